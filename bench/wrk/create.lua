dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
request = post_create
