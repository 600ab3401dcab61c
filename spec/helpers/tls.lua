-- Certificates for the TLS specs, made with the `openssl` command in `dir`: a CA
-- (`ca.pem`), a server certificate it signed for 127.0.0.1 (`srv.pem`, `srv.key`) and a
-- self-signed one it did not (`self.pem`, `self.key`). Returns their paths.
local shell = require "helpers.shell"
local F = require "helpers.files"

local M = {}

local function openssl(args)
  assert(shell.execute("openssl " .. args .. " >/dev/null 2>&1"), "openssl " .. args)
end

function M.make(dir)
  local ca = dir .. "/ca"
  local san = "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1"
  openssl(("req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.pem -days 2 -subj /CN=ocr-spec-ca"):format(ca, ca))
  openssl(("req -newkey rsa:2048 -nodes -keyout %s/srv.key -out %s/srv.csr -subj /CN=127.0.0.1"):format(dir, dir))
  F.write(dir .. "/san.ext", san .. "\n")
  openssl(("x509 -req -in %s/srv.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s/srv.pem -days 2 -extfile %s/san.ext")
          :format(dir, ca, ca, dir, dir))
  openssl(("req -x509 -newkey rsa:2048 -nodes -keyout %s/self.key -out %s/self.pem -days 2 -subj /CN=127.0.0.1 -addext %s")
          :format(dir, dir, san))
  return { ca = ca .. ".pem", cert = dir .. "/srv.pem", key = dir .. "/srv.key",
           self_cert = dir .. "/self.pem", self_key = dir .. "/self.key" }
end

--- The emulator arguments that serve `cert`/`key` over HTTPS.
function M.args(cert, key) return ("--tls-cert %s --tls-key %s"):format(cert, key) end

return M
