-- wrk script for bench/bench_progress.py: members' video players POSTing watch-progress reports.
-- Each request is the next member's report (round-robin, each wrk thread owns every Nth
-- member), and a member's segments grow by 15 s per report, so every report credits new time.
--
--   wrk -tN ... -s progress_report.lua http://HOST:PORT/ -- FILE BASE MODE N
--
-- FILE: one member a line, tab-separated: progress id, Cookie header, CSRF token, viewing uuid.
-- BASE: reports already sent per member by earlier runs (report n claims [0, (BASE + n) * 15]).
-- MODE: report (POST /progress/<id>/ with the member's cookies), bare (POST /bench/bare/, no
--       cookies) or bare-session (POST /bench/bare/ with the member's cookies).
-- A report's answer carries its row's signed state (courses/progress_state.py); as the player
-- does, the member's next report sends it back, so it needs no read. Answers are matched to
-- members by the progress id the state starts with.
-- done() prints STATUS, MAXN (most reports sent to one member), SAMPLE (first non-2xx) and one
-- SENT line per thread (its id, requests sent, members owned): which report each member got
-- last, for the check that no acknowledged second is missing from the database.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local members = {}
local steps = {}
local states = {}
local index_of = {}
local cursor = 0
local base = 0
local mode = "report"
c2, c3, c4, c5, maxn, sample, sent, owned = 0, 0, 0, 0, 0, "", 0, 0

function init(args)
  local nthreads = tonumber(args[4])
  base = tonumber(args[2])
  mode = args[3]
  local index = 0
  for line in io.lines(args[1]) do
    if index % nthreads == id then
      local progress, cookie, token, viewing =
        line:match("^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
      table.insert(members, {progress = progress, cookie = cookie, token = token,
                             viewing = viewing})
      table.insert(steps, 0)
      index_of[progress] = #members
    end
    index = index + 1
  end
  owned = #members
end

function request()
  cursor = cursor % #members + 1
  local member = members[cursor]
  local n = steps[cursor] + 1
  steps[cursor] = n
  sent = sent + 1
  if n > maxn then
    maxn = n
  end
  local seconds = (base + n) * 15
  local body = "csrfmiddlewaretoken=" .. member.token .. "&viewing=" .. member.viewing ..
    "&segments=%5B%5B0%2C" .. seconds .. "%5D%5D&position=" .. seconds
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local path = "/bench/bare/"
  if mode == "report" then
    path = "/progress/" .. member.progress .. "/"
    headers["Cookie"] = member.cookie
    if states[cursor] then
      body = body .. "&state=" .. states[cursor]
    end
  elseif mode == "bare-session" then
    headers["Cookie"] = member.cookie
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status < 300 then
    c2 = c2 + 1
    if mode == "report" and body then
      local state = body:match('"state": "([^"]+)"')
      local index = state and index_of[state:match("^(%d+):")]
      if index then
        states[index] = state
      end
    end
  elseif status < 400 then
    c3 = c3 + 1
  elseif status < 500 then
    c4 = c4 + 1
  else
    c5 = c5 + 1
  end
  if status >= 300 and sample == "" then
    sample = status .. " " .. (body or ""):sub(1, 200)
  end
end

function done(summary, latency, requests)
  local totals = {c2 = 0, c3 = 0, c4 = 0, c5 = 0}
  local most, first = 0, ""
  for _, thread in ipairs(threads) do
    for key, value in pairs(totals) do
      totals[key] = value + thread:get(key)
    end
    most = math.max(most, thread:get("maxn"))
    if first == "" then
      first = thread:get("sample")
    end
  end
  io.write(string.format("STATUS 2xx=%d 3xx=%d 4xx=%d 5xx=%d\n",
                         totals.c2, totals.c3, totals.c4, totals.c5))
  io.write(string.format("MAXN %d\n", most))
  if first ~= "" then
    io.write("SAMPLE " .. (first:gsub("%s+", " ")) .. "\n")
  end
  for _, thread in ipairs(threads) do
    io.write(string.format("SENT %d %d %d\n", thread:get("id"), thread:get("sent"),
                           thread:get("owned")))
  end
end
