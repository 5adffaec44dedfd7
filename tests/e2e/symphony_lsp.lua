-- Neovim's side of tests/e2e/test_e2e_neovim.py: its own built-in LSP client (Neovim 0.7 API:
-- vim.lsp.start_client + vim.lsp.buf_attach_client) talking to a real Symphony daemon.
--
-- The test loads this file with dofile() through nvim_exec_lua and calls one function at a
-- time; every function returns plain data (strings, numbers, tables) for msgpack. Nothing here
-- sleeps: waits are vim.wait(timeout, condition), which keeps Neovim's event loop running
-- (so LSP messages, including the daemon's workspace/applyEdit, are handled) until the
-- condition holds or the deadline passes, and the caller is told which.

local M = {}

-- Exactly the text Neovim's LSP client sends for a buffer (buf_get_full_text in 0.7's lsp.lua):
-- lines joined by the line ending, plus one more if 'eol' is set.
local function text_of(bufnr)
  local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), '\n')
  if vim.api.nvim_buf_get_option(bufnr, 'eol') then
    text = text .. '\n'
  end
  return text
end

M.text_of = text_of

-- Start a client for `cmd` and wait until its initialize round trip is done. `debounce_ms`
-- (optional) overrides how long Neovim holds didChange (0.7's default: 150 ms after the last).
function M.start(cmd, root_dir, timeout_ms, debounce_ms)
  if debounce_ms == vim.NIL then
    debounce_ms = nil -- Python's None arrives as vim.NIL
  end
  local id = vim.lsp.start_client({
    name = 'symphony',
    cmd = cmd,
    root_dir = root_dir,
    flags = { debounce_text_changes = debounce_ms },
  })
  if not id then
    return { ok = false, error = 'vim.lsp.start_client returned nil' }
  end
  local client = vim.lsp.get_client_by_id(id)
  local ok = vim.wait(timeout_ms, function()
    return client.initialized == true or client.is_stopped()
  end, 10)
  if not ok or not client.initialized then
    return { ok = false, error = 'the LSP client did not initialize (stopped: ' .. tostring(client.is_stopped()) .. ')' }
  end
  local caps = client.server_capabilities or {}
  local sync = caps.textDocumentSync
  return {
    ok = true,
    id = id,
    offset_encoding = client.offset_encoding,
    position_encoding = caps.positionEncoding,
    sync_change = type(sync) == 'table' and sync.change or sync,
  }
end

-- Edit `path` and attach the client: Neovim sends textDocument/didOpen with the file's text.
function M.open(client_id, path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  if not vim.lsp.buf_attach_client(bufnr, client_id) then
    return { ok = false, error = 'vim.lsp.buf_attach_client failed' }
  end
  return { ok = true, bufnr = bufnr, uri = vim.uri_from_bufnr(bufnr), text = text_of(bufnr) }
end

-- Ask the daemon, over Neovim's own connection, for the buffer's text, until it equals Neovim's.
--
-- A request flushes Neovim's pending (debounced) didChange first, and the daemon handles one
-- connection's messages in order, so the answer reflects everything Neovim typed before it.
-- If the texts still differ, the daemon has changes Neovim has not applied yet (its
-- workspace/applyEdit is on the way): wait for the buffer to change, then ask again.
function M.converge(client_id, bufnr, uri, timeout_ms)
  local client = vim.lsp.get_client_by_id(client_id)
  local deadline = vim.loop.now() + timeout_ms
  local last = { ok = false, error = 'no answer' }
  while true do
    local tick = vim.api.nvim_buf_get_changedtick(bufnr)
    local remaining = deadline - vim.loop.now()
    if remaining <= 0 then
      return last
    end
    local reply, err = client.request_sync('symphony/buffer/getText', { uri = uri }, remaining, bufnr)
    local mine = text_of(bufnr)
    if reply and reply.result and reply.result.text == mine then
      return { ok = true, text = mine, revision = reply.result.revision }
    end
    last = {
      ok = false,
      nvim = mine,
      daemon = reply and reply.result and reply.result.text or vim.NIL,
      error = (reply and reply.err and reply.err.message) or err or vim.NIL,
    }
    remaining = deadline - vim.loop.now()
    local changed = remaining > 0 and vim.wait(remaining, function()
      return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
    end, 5)
    if not changed then
      return last
    end
  end
end

-- Type `keys` now, but hold the didChange they make until the file `flag` exists, and keep
-- Neovim's event loop from running meanwhile: whatever the daemon sends (an applyEdit) waits in
-- the pipe until this returns. So the keystrokes reach the daemon after its applyEdit left and
-- before Neovim applied it: Neovim typed without having seen the other client's change.
-- (The wait is on a condition, the flag the test creates, with a deadline; uv.sleep(1) is only
-- its polling interval, since the loop that would deliver an event must not run.)
function M.type_held(client_id, keys, flag, timeout_ms)
  local client = vim.lsp.get_client_by_id(client_id)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'xt', false)
  local deadline = vim.loop.hrtime() + timeout_ms * 1e6
  while not vim.loop.fs_stat(flag) do
    if vim.loop.hrtime() > deadline then
      return { ok = false, error = 'the flag file never appeared' }
    end
    vim.loop.sleep(1)
  end
  -- Any notification but didChange first flushes the pending (debounced) didChange.
  client.notify('$/setTrace', { value = 'off' })
  return { ok = true, tick = vim.api.nvim_buf_get_changedtick(vim.api.nvim_get_current_buf()) }
end

-- Wait until the buffer changed since `tick` (the daemon's applyEdit arrived and was applied),
-- then make two round trips to the daemon that do not flush Neovim's pending didChange
-- (client.rpc.request, not client.request). Once both are answered the daemon has handled
-- Neovim's answer to that applyEdit and whatever that answer led it to do, while the didChange
-- echoing the edit is still held by Neovim (the test starts the client with a long debounce).
-- Two, because an answer read in the same chunk as the first ping may be handled after it.
function M.applied_then_quiet(client_id, bufnr, tick, timeout_ms)
  local client = vim.lsp.get_client_by_id(client_id)
  local changed = vim.wait(timeout_ms, function()
    return vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
  end, 5)
  if not changed then
    return { ok = false, error = "the daemon's applyEdit never arrived" }
  end
  for _ = 1, 2 do
    local answered = false
    client.rpc.request('symphony/ping', vim.empty_dict(), function()
      answered = true
    end)
    if not vim.wait(timeout_ms, function() return answered end, 5) then
      return { ok = false, error = 'symphony/ping was not answered' }
    end
  end
  return { ok = true }
end

-- A request over Neovim's connection (e.g. symphony/info), answered synchronously.
function M.request(client_id, method, params, timeout_ms)
  local client = vim.lsp.get_client_by_id(client_id)
  if params == nil or vim.tbl_isempty(params) then
    params = vim.empty_dict() -- an object on the wire, not []
  end
  local reply, err = client.request_sync(method, params, timeout_ms)
  if not reply then
    return { ok = false, error = err or 'no reply' }
  end
  if reply.err then
    return { ok = false, error = reply.err.message }
  end
  return { ok = true, result = reply.result }
end

return M
