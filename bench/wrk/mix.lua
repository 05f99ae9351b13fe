-- 80% GET by id, 15% state update, 5% create.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
request = function()
  local roll = math.random(100)
  if roll <= 80 then return get_by_id() end
  if roll <= 95 then return put_state() end
  return post_create()
end
