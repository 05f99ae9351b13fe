request = function() return wrk.format("GET", "/bench/floor") end
