/*
Package agent is the livecov runtime: it is compiled into every binary that `livecov build`
produces and serves the binary's live coverage counters over HTTP.

livecov rewrites each instrumented Go file so that it declares a counter array and bumps one
element per basic block. A generated init function in every instrumented package hands those
arrays to [RegisterFile]. A generated file, zz_build.go, declares the variable build: the
build id, the counter mode, the default service name and server URL, and the block metadata
of the whole build as JSON.

The package imports only the standard library and has no sub-packages: its files are copied
as they are into a package directory of the user's main module, under an import path known
only at build time.

# Start-up

The agent starts itself from its init function. Start-up never blocks, never panics and
never writes to standard output; the agent writes to standard error only when LIVECOV_DEBUG
is set. All work happens in goroutines that recover from panics. If the agent cannot listen
or cannot reach the server, it says so under LIVECOV_DEBUG and the host carries on.

# Environment

	LIVECOV_AGENT_ADDR  listen address of the agent's HTTP endpoints (default ":0": all
	                    interfaces, a free port); "off" disables the agent entirely
	LIVECOV_SERVER      livecov server URL to register with (default: the URL baked in at
	                    build time); "off" disables registration
	LIVECOV_SERVICE     service name (default: the name baked in at build time, else the base
	                    name of the binary)
	LIVECOV_TOKEN       when set, every endpoint requires "Authorization: Bearer <token>", and
	                    the agent sends the same header to the server
	LIVECOV_HEARTBEAT   interval between heartbeats, a Go duration (default 10s)
	LIVECOV_DEBUG       when non-empty, log to standard error
	LIVECOV_TEST_DIR    set by `livecov test`: the binary is a test binary, which does not
	                    listen (unless LIVECOV_AGENT_ADDR says otherwise) and whose
	                    TestMain calls [AfterRun] to write its package's coverage there

# Endpoints

	GET  /livecov/v1/meta      the block metadata, JSON, always gzip-compressed
	GET  /livecov/v1/counters  the counters, in the format described in encode.go
	POST /livecov/v1/reset     swaps every counter to zero and returns what they held
	GET  /livecov/v1/profile   a Go coverprofile, as `go test -coverprofile` writes it

Every successful answer carries the header Livecov-Build with the build id. Errors are JSON
objects {"error": "..."}.

# Reading counters while they change

In set and atomic mode the instrumented code writes counters with sync/atomic, and the agent
reads them with atomic.LoadUint32 and resets them with atomic.SwapUint32, so every read and
every reset is exact. In count mode the instrumented code uses plain increments (as
`go test -covermode=count` does): a read may miss an increment in flight, a reset that races
with an increment of the same counter may count that block's hits twice, and a program
built with -race may report those accesses. Use atomic mode where counts must be exact under
concurrency.
*/
package agent
