-- String handling and clock use seen in health scripts
local hs = {}
local msg = ""
if obj.metadata ~= nil and obj.metadata.name ~= nil then
  msg = string.gsub(obj.metadata.name, "(%w+)", "<%1>")
end
local parts = {}
for word in string.gmatch("a,b,,c", "([^,]*)") do table.insert(parts, word) end
local y, m, d = string.match("2024-01-02T03:04:05Z", "^(%d+)-(%d+)-(%d+)")
local t = os.time({year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 0})
local ok, err = pcall(function() error({code = 1}) end)
setmetatable(hs, {__index = function(t, k) return "missing " .. k end})
hs.status = "Healthy"
hs.message = string.format("%s %d %s %q %5.1f", msg, #parts, os.date("!%Y-%m-%d", t), tostring(ok), math.pi)
  .. string.rep("=", 3) .. string.sub("abcdef", -3, -2) .. string.byte("A") .. string.char(66)
  .. table.concat(parts, "|") .. select("#", 1, 2, 3) .. tostring(hs.other)
return hs
