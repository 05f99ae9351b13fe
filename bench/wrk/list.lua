dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
request = function() return wrk.format("GET", "/sessions?limit=50") end
