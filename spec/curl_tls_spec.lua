-- ocr.curl over TLS for real: an HTTPS emulator on 127.0.0.1 with a certificate signed by a CA
-- this spec makes with the `openssl` command. Verification is on by default: with the CA as
-- `ca_file` the request succeeds end to end; without it, or against a self-signed server, it
-- fails with kind `tls` before anything is sent.
local curl = require "ocr.curl"
local emulator = require "helpers.emulator"
local F = require "helpers.files"
local tls = require "helpers.tls"

describe("ocr.curl TLS", function()
  local dir, ca, trusted, untrusted

  lazy_setup(function()
    dir = F.tmpdir()
    local certs = tls.make(dir)
    ca = certs.ca
    trusted = emulator.start("httptest", tls.args(certs.cert, certs.key))
    untrusted = emulator.start("httptest", tls.args(certs.self_cert, certs.self_key))
  end)

  lazy_teardown(function()
    if trusted then trusted:stop() end
    if untrusted then untrusted:stop() end
    if dir then F.rmdir(dir) end
  end)

  before_each(function() trusted:reset() untrusted:reset() end)

  it("verifies the server against ca_file and completes the request", function()
    local s = curl.session{ ca_file = ca }
    finally(function() s:close() end)
    local res, err = s:request{ url = trusted.url .. "/status/200" }
    assert.is_nil(err)
    assert.equal(200, res.status)
    assert.truthy(trusted.url:find("^https://"))
  end)

  it("without the CA, verification fails with kind tls and nothing sent", function()
    local s = curl.session{}
    finally(function() s:close() end)
    local res, err = s:request{ method = "POST", url = trusted.url .. "/status/200", body = "x" }
    assert.is_nil(res)
    assert.equal("tls", err.kind)
    assert.is_false(err.sent)
    assert.equal(0, #trusted:requests("/status/"))
  end)

  it("a certificate the CA did not sign fails even with the CA given", function()
    local s = curl.session{ ca_file = ca }
    finally(function() s:close() end)
    local res, err = s:request{ url = untrusted.url .. "/status/200" }
    assert.is_nil(res)
    assert.equal("tls", err.kind)
  end)

  it("insecure = true turns verification off, and only then", function()
    local s = curl.session{ insecure = true }
    finally(function() s:close() end)
    local res, err = s:request{ url = untrusted.url .. "/status/200" }
    assert.is_nil(err)
    assert.equal(200, res.status)
  end)
end)
