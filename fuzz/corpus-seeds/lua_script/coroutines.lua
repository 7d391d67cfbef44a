local co = coroutine.create(function(a)
  local b = coroutine.yield(a + 1)
  return b * 2
end)
local _, x = coroutine.resume(co, 1)
local _, y = coroutine.resume(co, x)
local t = {5, 3, 9, 1}
table.sort(t, function(a, b) return a > b end)
return {status = (y == 4 and t[1] == 9) and "Healthy" or "Degraded", message = coroutine.status(co)}
