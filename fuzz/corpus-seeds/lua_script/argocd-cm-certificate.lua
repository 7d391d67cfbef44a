hs = {status = "Progressing", message = "Waiting for certificate"}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" and c.status == "True" then
      hs.status = "Healthy"
      hs.message = "ready until " .. obj.status.notAfter
    elseif c.type == "Ready" and c.status == "False" then
      hs.status = "Degraded"
      hs.message = c.reason .. ": " .. c.message
    end
  end
end
return hs
