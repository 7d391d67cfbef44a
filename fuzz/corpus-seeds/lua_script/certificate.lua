-- cert-manager Certificate: Ready condition decides; an expiring certificate is Degraded.
local hs = {status = "Progressing", message = "Waiting for certificate"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if table.getn(obj.status.conditions) == 0 then
  hs.message = "Certificate has no conditions yet"
  return hs
end
for i, condition in ipairs(obj.status.conditions) do
  if condition.type == "Issuing" and condition.status == "True" then
    hs.message = "Issuing: " .. (condition.message or "")
    return hs
  end
  if condition.type == "Ready" then
    if condition.status == "False" then
      hs.status = "Degraded"
      hs.message = condition.message
      return hs
    end
    if condition.status == "True" then
      if obj.status.notAfter ~= nil then
        local y, mo, d, h, mi, s = string.match(obj.status.notAfter, "(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z")
        local expires = os.time({year = y, month = mo, day = d, hour = h, min = mi, sec = s})
        local days = math.floor(os.difftime(expires, os.time()) / 86400)
        if days < 0 then
          hs.status = "Degraded"
          hs.message = string.format("Certificate expired on %s", os.date("!%Y-%m-%d", expires))
          return hs
        end
      end
      hs.status = "Healthy"
      hs.message = condition.message
      return hs
    end
  end
end
return hs
