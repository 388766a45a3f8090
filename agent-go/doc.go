/*
Package agent is the livecov runtime: it is compiled into every binary that `livecov build`
produces and serves the binary's live coverage counters over HTTP. Under LIVECOV_DIR it also
keeps a copy of them on disk, so that the coverage of a process that stops is not lost.

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
	LIVECOV_HEARTBEAT   interval between heartbeats, a Go duration (default 10s, at least
	                    10ms)
	LIVECOV_DIR         directory in which to keep the counters on disk (see "Processes that
	                    stop"); unset, empty or "off": none. A relative path is taken from
	                    the working directory at start. Works with LIVECOV_AGENT_ADDR=off
	                    too; ignored in test binaries
	LIVECOV_FLUSH       interval between writes of the counters to LIVECOV_DIR, a Go duration
	                    (default 10s, at least 10ms)
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

# Processes that stop

The counters live in the process's memory: when the process ends, whatever nobody read is
gone. With LIVECOV_DIR set, the agent keeps a copy in that directory (created, mode 0755, if
missing):

	<build id>.meta.json.gz      the metadata, the bytes of GET /livecov/v1/meta; written once,
	                             at start, unless another instance of the build wrote it
	<service>-<instance id>.lcc  the counters, the body of GET /livecov/v1/counters; replaced
	                             every LIVECOV_FLUSH and by every call of [Flush]

<service> is the service name with every character but ASCII letters, digits, '.', '_' and
'-' replaced by '_', cut to 128 bytes; <instance id> is the 32 hex digits under which the
agent registers with the server, new for every process. Each file is written to a temporary
file in the same directory, whose name starts with ".", and renamed over the old one: a
reader sees a whole file, never a part of one. The files stay when the process ends; the
agent never deletes them. One goroutine writes them; Flush writes on the goroutine that calls
it; the two never write at once. An error (the directory cannot be created, the disk is full)
is logged under LIVECOV_DEBUG, once until a write succeeds, and the agent tries again at the
next write; the host never notices.

livecov's build makes `defer Flush()` the first statement of the program's func main. What
is kept therefore depends on how the process ends:

  - main returns: everything. The deferred Flush writes the counters as they are then
    (increments that other goroutines make after it, while the process exits, are lost).
  - A panic on the main goroutine that nothing recovers: everything up to the panic. Go runs
    deferred calls while the panic unwinds main, so Flush writes, and the panic then goes
    on and ends the process as it would have (Flush does not stop it).
  - os.Exit, wherever it is called (log.Fatal calls it; so may a deferred call that runs
    before Flush); a panic on any other goroutine; a fatal runtime error (concurrent map
    writes, out of memory in the Go runtime, a stack overflow); SIGTERM, SIGINT or SIGQUIT
    with Go's default handling; SIGKILL; the kernel's OOM killer: no deferred call runs. What is kept is what the last periodic write saw, so at most one
    LIVECOV_FLUSH interval of counts is lost (plus the time one write takes); a process that
    ends so before the first periodic write (one interval after start) and before any call
    of Flush leaves no counters file.

The agent does not sync the files to the storage device, so a crash of the machine (not of
the process) may lose more than that, as file systems allow.

A program that handles SIGTERM itself (signal.Notify) and returns from main to shut down, as
servers commonly do, keeps everything. The agent deliberately installs no signal handler: a
handler changes what a signal does to the host (signal.Notify for SIGTERM means SIGTERM no
longer ends the process), and the agent must never change its host's behaviour.

The counters file holds the counters as they were at its write. POST /livecov/v1/reset does
not rewrite it: until the next write, the file still holds the counts that the reset handed
over.

Without LIVECOV_DIR nothing is kept on disk, Flush does nothing, and no goroutine is started
for it. A livecov server that pulls counters on a schedule loses the same window when a
process stops: the counts since its last pull.

Test binaries (LIVECOV_TEST_DIR set) never write to LIVECOV_DIR: [AfterRun] writes their
coverage.

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
