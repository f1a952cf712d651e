-- wrk script for bench/bench_quiz.py: members submitting their quiz answers.
-- Each request is the next member's attempt (round-robin, each wrk thread owns every Nth
-- member): a first submit answers it, a later one (after wrapping round) finds it answered.
--
--   wrk -tN ... -s quiz_submit.lua http://HOST:PORT/ -- FILE MODE N
--
-- FILE: one member a line, tab-separated: attempt id, Cookie header, form body (with the CSRF
-- token, the attempt's token and one answer per drawn question).
-- MODE: submit (POST /quizzes/attempts/<id>/submit/ with the member's cookies, as the page's form
-- sends it: answered means 302 to
-- the result page) or bare (POST /bench/bare/, no cookies: 200).
-- done() prints STATUS ok=… bad=… and SAMPLE (the first bad answer).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local members = {}
local cursor = 0
local mode = "submit"
ok, bad, sample = 0, 0, ""

function init(args)
  local nthreads = tonumber(args[3])
  mode = args[2]
  local index = 0
  for line in io.lines(args[1]) do
    if index % nthreads == id then
      local attempt, cookie, body = line:match("^(%d+)\t([^\t]*)\t([^\t]*)$")
      table.insert(members, {attempt = attempt, cookie = cookie, body = body})
    end
    index = index + 1
  end
end

function request()
  cursor = cursor % #members + 1
  local member = members[cursor]
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  if mode == "submit" then
    headers["Cookie"] = member.cookie
    return wrk.format("POST", "/quizzes/attempts/" .. member.attempt .. "/submit/", headers, member.body)
  end
  return wrk.format("POST", "/bench/bare/", headers, "x=1")
end

function response(status, headers, body)
  local good = (mode == "submit" and status == 302) or (mode ~= "submit" and status == 200)
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == "" then
      sample = status .. " " .. (body or ""):sub(1, 200)
    end
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
    if first == "" then
      first = thread:get("sample")
    end
  end
  io.write(string.format("STATUS ok=%d bad=%d\n", total_ok, total_bad))
  if first ~= "" then
    io.write("SAMPLE " .. (first:gsub("%s+", " ")) .. "\n")
  end
end
