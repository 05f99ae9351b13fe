dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
request = get_by_id
