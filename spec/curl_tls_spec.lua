-- ocr.curl over TLS for real: an HTTPS emulator on 127.0.0.1 with a certificate signed by a CA
-- this spec makes with the `openssl` command. Verification is on by default: with the CA as
-- `ca_file` the request succeeds end to end; without it, or against a self-signed server, it
-- fails with kind `tls` before anything is sent.
local curl = require "ocr.curl"
local emulator = require "helpers.emulator"
local F = require "helpers.files"
local shell = require "helpers.shell"

describe("ocr.curl TLS", function()
  local dir, ca, trusted, untrusted

  local function openssl(args)
    assert(shell.execute("openssl " .. args .. " >/dev/null 2>&1"), "openssl " .. args)
  end

  lazy_setup(function()
    dir = F.tmpdir()
    ca = dir .. "/ca"
    openssl(("req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.pem -days 2 -subj /CN=ocr-tls-spec-ca"):format(ca, ca))
    openssl(("req -newkey rsa:2048 -nodes -keyout %s/srv.key -out %s/srv.csr -subj /CN=127.0.0.1"):format(dir, dir))
    F.write(dir .. "/san.ext", "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\n")
    openssl(("x509 -req -in %s/srv.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s/srv.pem -days 2 -extfile %s/san.ext")
            :format(dir, ca, ca, dir, dir))
    openssl(("req -x509 -newkey rsa:2048 -nodes -keyout %s/self.key -out %s/self.pem -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=DNS:127.0.0.1,IP:127.0.0.1")
            :format(dir, dir))
    trusted = emulator.start("httptest", ("--tls-cert %s/srv.pem --tls-key %s/srv.key"):format(dir, dir))
    untrusted = emulator.start("httptest", ("--tls-cert %s/self.pem --tls-key %s/self.key"):format(dir, dir))
  end)

  lazy_teardown(function()
    if trusted then trusted:stop() end
    if untrusted then untrusted:stop() end
    if dir then F.rmdir(dir) end
  end)

  before_each(function() trusted:reset() untrusted:reset() end)

  it("verifies the server against ca_file and completes the request", function()
    local s = curl.session{ ca_file = ca .. ".pem" }
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
    local s = curl.session{ ca_file = ca .. ".pem" }
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
