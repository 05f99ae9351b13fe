-- Shared by the scenarios: session ids from BENCH_IDS, one per line.
ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time())

state_body = '{"methodology":"mec","concept_id":"concept-bench","concept_name":"Bench concept",'
  .. '"turn_count":3,"coverage_score":0.5,"last_strategy":"laddering"}'
create_body = '{"methodology":"mec","concept_id":"concept-bench","concept_name":"Bench concept"}'
json_headers = { ["Content-Type"] = "application/json" }

function get_by_id()
  return wrk.format("GET", "/sessions/" .. ids[math.random(#ids)])
end

function put_state()
  return wrk.format("PUT", "/sessions/" .. ids[math.random(#ids)] .. "/state", json_headers, state_body)
end

function post_create()
  return wrk.format("POST", "/sessions", json_headers, create_body)
end
