-- The README's two commands on a fresh machine: `make demo` and `make test` install the missing
-- Debian packages and then build. A make reads its Makefile (and asks pkg-config what exists)
-- before its first recipe runs, so a build that is a prerequisite of the same make would not see
-- the packages `deps` just installed: on a fresh Debian 12 machine the first `make demo` skipped
-- ocr.tesseract and failed. Replayed here with stand-ins for the package installer and for
-- pkg-config, which says tesseract is missing until the installer ran.
local shell = require "helpers.shell"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function succeeded(r) return r == true or r == 0 end   -- (os.execute: 5.2+ or 5.1)
local have_pkgs = succeeded(shell.execute("pkg-config --exists tesseract lept"))
local describe_pkgs = have_pkgs and describe
  or function(name) pending(name .. " (pkg-config finds no tesseract lept here)") end

describe_pkgs("make's package-installing targets", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(succeeded(shell.execute("mkdir -p " .. sh_quote(dir .. "/out"))))
    local fake_pkg_config = ([[#!/bin/sh
case "$*" in *tesseract*|*lept*) [ -f %s ] || exit 1 ;; esac
exec pkg-config "$@"
]]):format(sh_quote(dir .. "/installed"))
    local f = assert(io.open(dir .. "/pkg-config", "w"))
    f:write(fake_pkg_config)
    f:close()
    f = assert(io.open(dir .. "/install-deps", "w"))
    f:write("#!/bin/sh\ntouch " .. sh_quote(dir .. "/installed") .. "\n")
    f:close()
    assert(succeeded(shell.execute("chmod +x " .. sh_quote(dir .. "/pkg-config") .. " " .. sh_quote(dir .. "/install-deps"))))
  end)

  after_each(function()
    shell.execute("rm -rf " .. sh_quote(dir))
  end)

  -- LUA=true turns the targets' final command (the demo, busted) into a no-op: what is checked
  -- is what they built. The objects are the checkout's usual ones (build/obj5.4, compiled by
  -- `make test` before the specs ran), so only linking happens here.
  -- (MAKEFLAGS unset: when the specs run under `make test LUA_VERSION=5.1`, the outer make's
  -- variables would reach this one through it.)
  local MAKE = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s"

  -- Runs a make command line; returns whether it exited 0, and what it printed. (The status is
  -- echoed: LuaJIT's popen close does not return it.)
  local function make(args)
    local p = shell.popen(MAKE .. " " .. args .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("*a")
    p:close()
    return out:match("exit=0%s*$") ~= nil, out
  end

  local function run(target)
    return make(("%s INSTALL_DEPS=%s PKG_CONFIG=%s OUT=%s LUA=true LUA_VERSION=5.4")
      :format(target, sh_quote(dir .. "/install-deps"), sh_quote(dir .. "/pkg-config"), sh_quote(dir .. "/out")))
  end

  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
  end

  for _, target in ipairs{ "demo", "test" } do
    it(("`make %s` builds ocr.tesseract when its packages were installed by the same run"):format(target), function()
      local ok, out = run(target)
      assert.is_true(ok, out)
      assert.is_true(exists(dir .. "/installed"), "the installer did not run")
      assert.is_nil(out:find("ocr.tesseract skipped", 1, true), out)
      assert.is_true(exists(dir .. "/out/ocr/tesseract.so"), out)
      assert.is_true(exists(dir .. "/out/ocr/curl.so"), out)
    end)
  end

  it("a make that finds no tesseract says it skips the module and still builds the rest", function()
    local ok, out = make(("all PKG_CONFIG=%s OUT=%s LUA_VERSION=5.4")
      :format(sh_quote(dir .. "/pkg-config"), sh_quote(dir .. "/out")))
    assert.is_true(ok, out)
    assert.truthy(out:find("ocr.tesseract skipped", 1, true), out)
    assert.is_false(exists(dir .. "/out/ocr/tesseract.so"))
    assert.is_true(exists(dir .. "/out/ocr/core.so"), out)
  end)
end)

-- .ci/install-deps, which `make demo` and `make test` run first: not as root it installs nothing
-- and prints the exact apt-get line for what is missing. Replayed with stand-ins for id,
-- dpkg-query (two packages of .ci/packages missing) and apt-get (which must not run).
describe(".ci/install-deps", function()
  it("prints the exact apt-get line for the missing packages when not run as root", function()
    local dir = os.tmpname()
    os.remove(dir)
    finally(function() shell.execute("rm -rf " .. sh_quote(dir)) end)
    assert(succeeded(shell.execute("mkdir -p " .. sh_quote(dir))))
    local stubs = {
      id = "#!/bin/sh\necho 1000\n",
      ["dpkg-query"] = "#!/bin/sh\n"   -- the package is its last argument
        .. "for p; do :; done\ncase \"$p\" in lua5.4|tesseract-ocr-eng) exit 1 ;; esac\n"
        .. "echo 'install ok installed'\n",
      ["apt-get"] = "#!/bin/sh\ntouch " .. sh_quote(dir .. "/apt-get-ran") .. "\n",
    }
    for name, body in pairs(stubs) do
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(body)
      f:close()
    end
    assert(succeeded(shell.execute("chmod +x " .. sh_quote(dir) .. "/*")))
    local p = shell.popen("PATH=" .. sh_quote(dir) .. ":$PATH .ci/install-deps 2>&1; echo \"exit=$?\"")
    local out = p:read("*a")
    p:close()
    assert.equal("missing Debian packages; run: sudo apt-get install -y lua5.4 tesseract-ocr-eng\nexit=1\n", out)
    local f = io.open(dir .. "/apt-get-ran")
    assert.is_nil(f, "apt-get ran")
  end)
end)
