dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
-- A whole turn: two utterances, a 4 KiB state patch and a record. Turn numbers grow
-- per session from a base taken from the clock, so a later run never repeats one.
local base = (os.time() % 100000) * 1000
local turns = {}
local entry = '{"turn":1,"node_id":"n1","label":"' .. string.rep("x", 40) .. '","strategy":"ladder"}'
local history = {}
for i = 1, 40 do history[i] = entry end
local data = '{"mode":"focused","focus_history":[' .. table.concat(history, ",") .. ']}'
local record = '{"strategy":"ladder","scores":{"depth":0.4,"novelty":0.7},'
  .. '"usage":{"model":"sonnet","input_tokens":1200,"output_tokens":180,'
  .. '"cost_usd":0.0031,"latency_ms":950.0}}'

request = function()
  local id = ids[math.random(#ids)]
  turns[id] = (turns[id] or base) + 1
  local n = turns[id]
  local body = '{"utterances":['
    .. '{"turn_number":' .. n .. ',"speaker":"interviewer","text":"Why does that matter?"},'
    .. '{"turn_number":' .. n .. ',"speaker":"respondent","text":"Because it reminds me of home."}],'
    .. '"state_patch":{"turn_count":' .. n .. ',"data":' .. data .. '},'
    .. '"record":' .. record .. '}'
  return wrk.format("POST", "/sessions/" .. id .. "/turns", json_headers, body)
end
