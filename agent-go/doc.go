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
	LIVECOV_TOKEN       when set, the endpoints also accept this token, and the agent sends
	                    "Authorization: Bearer <token>" to the server; without it only the
	                    server the agent registered with can read them (see "Endpoints")
	LIVECOV_LABELS      labels to register with, "env=staging,version=1.4.2"; beside them the
	                    agent sends the build's VCS revision (vcs.revision, vcs.modified) and,
	                    in a Kubernetes pod, k8s.pod and k8s.namespace (labels.go)
	LIVECOV_FINAL_TIMEOUT
	                    how long Finish may take to deliver the last counters to the server
	                    when main returns or SIGTERM or SIGINT ends the process, a Go
	                    duration (default 2s); "off" or "0" delivers nothing
	LIVECOV_SIGNALS     "off": never take SIGTERM or SIGINT, not even in a program that has
	                    no handler of its own (see "Processes that stop"); anything else: take
	                    them there
	LIVECOV_HEARTBEAT   interval between heartbeats, a Go duration (default 10s, at least
	                    10ms)
	LIVECOV_CHANNEL     when the agent keeps a connection to the server over which the server
	                    reads it (see "The channel"): "auto" (default) when the server asks,
	                    "on" from registration on, "off" never
	LIVECOV_PROXY       a forward HTTP proxy, "http://host:port", through which the agent
	                    reaches the server (default: none; HTTP_PROXY and the like are not
	                    read, they are for the host's own traffic)
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

	GET  /livecov/v1/meta              the block metadata, JSON, always gzip-compressed
	GET  /livecov/v1/counters          the counters (epoch stamps in set mode), in the format
	                                   described in encode.go
	POST /livecov/v1/boundary?token=T  ends the current epoch and answers the state at the
	                                   boundary, in the same format (see "Epochs and
	                                   boundaries")
	GET  /livecov/v1/profile           a Go coverprofile, as `go test -coverprofile` writes it

Every request must carry "Authorization: Bearer <X>", where X is the process secret or, when
LIVECOV_TOKEN is set, that token. The secret is 32 random hex digits, new for every process,
which the agent tells only the server it registers with, in its registration and in every
heartbeat (as the JSON field "secret"). So with no configuration nobody but that server can
read the agent; to query one by hand, set LIVECOV_TOKEN. A request without either is answered
401 before anything else, so that it learns nothing, not even which paths exist. Then an
unknown path is answered 404 and a wrong method 405, with an Allow header; the GET endpoints
answer HEAD too.

# The channel

A server that cannot connect to the agent (NAT, another network or cluster, a laptop) reads it
over a connection the agent makes instead: a long poll, POST /api/v1/agents/<instance>/channel,
that the server answers with its next request, or 204 when none came within its
--channel-wait. The agent serves the request with the same handler as its port, carrying the
Authorization a pull would carry, so the checks and answers are the same, and posts the answer
to POST /api/v1/agents/<instance>/channel/<id>. Both requests carry the agent token, if any,
and the process secret in a Livecov-Secret header: only the server the agent registered with
can ask. They are ordinary HTTP requests, each shorter than proxies' idle timeouts. The agent
opens the channel when a registration or heartbeat answer says {"channel": true} (the server
could not connect to it, or is run with --agent-channel always), or from registration on under
LIVECOV_CHANNEL=on, and keeps it for the life of the process (channel.go).

The boundary endpoint answers 403 to any request that carries an Origin header, or a
Sec-Fetch-Site header other than "same-origin" or "none": browsers send those, and no web page
is to change an agent's state. It answers 400 unless the query holds exactly one parameter
token of 1 to 128 ASCII letters, digits, '-', '_' or '.'.

Every successful answer carries the header Livecov-Build with the build id. The answers of the
counters and boundary endpoints also carry Livecov-Epoch, the current epoch after the request,
and Cache-Control: no-store. Errors are JSON objects {"error": "..."}; a build whose metadata
does not check out answers 500 on every endpoint but meta.

The counters, boundary and profile answers are gzip-compressed, with "Content-Encoding: gzip",
when the request's Accept-Encoding allows gzip (RFC 9110: "gzip" or "x-gzip" listed with a
weight above 0, or "*" with a weight above 0 and gzip not listed; a weight of 0 refuses it)
and compressing makes the answer smaller; otherwise, and for every other coding, they are sent
as they are. They carry "Vary: Accept-Encoding" either way. Compression changes only the bytes
on the wire: a boundary asked again with the same token decompresses to the same bytes,
whatever either request accepted. A coverprofile shrinks to about a seventh; the counters
are compact already, and the livecov server does not ask for gzip (see docs/BENCHMARKS.md).
The meta answer is gzip JSON whatever the request accepts, the same bytes for the life of the
process.

# Epochs and boundaries

No operation of the agent destroys counts. A server that is killed halfway through pulling
counters therefore loses nothing, and one that does not know whether its last boundary was
applied sends it again and gets the same answer.

The agent numbers epochs from 1; each boundary ends the current epoch and begins the next. In
set mode the instrumented code sets a block's counter when the block runs, and the agent
reports for each block a stamp: the current epoch if the counter is set, else the epoch in
which the block was last seen hit as of the last boundary (0: never). A boundary swaps every
counter to zero, stamping the ending epoch on each block whose counter was set, and begins the
next epoch: it moves what it takes into the stamps and loses nothing. A hit that races with
the swap lands either before it, and is stamped with the ending epoch, or after it, and sets
the counter again for the new epoch. The blocks hit since the boundary that began epoch E are
those whose stamp is E or more. Before the first boundary every hit block reads 1, as in Go's
set mode.

In count and atomic mode the counters count the hits since the process started, and the agent
never writes them. A boundary saves a copy of them and begins the next epoch; what happened in
an epoch is the difference between the copies saved at its two ends.

The answer of a boundary is the state at the boundary: in set mode, for each block, the last
epoch in which it was hit, at most the one that ended (0: never); in count and atomic mode, the
copy of the counters. Its Livecov-Epoch is the epoch that began at the boundary. The server
names each boundary with a token of its choosing. If the token is the one of the last boundary
applied, the agent applies none and answers that boundary again, the same bytes and the same
epoch, so a retry neither skips an epoch nor loses an answer that was never delivered. Only
the last token is remembered: any other token applies a new boundary.

# Processes that stop

The counters live in the process's memory: when the process ends, whatever nobody read is
gone. With LIVECOV_DIR set, the agent keeps a copy in that directory (created, mode 0755, if
missing):

	<build id>.meta.json.gz      the metadata, the bytes of GET /livecov/v1/meta; written once,
	                             at start, unless another instance of the build wrote it
	<service>-<instance id>.lcc  the counters, the body of GET /livecov/v1/counters (epoch
	                             stamps in set mode); replaced every LIVECOV_FLUSH and by
	                             every call of [Flush]

<service> is the service name with every character but ASCII letters, digits, '.', '_' and
'-' replaced by '_', cut to 128 bytes; <instance id> is the 32 hex digits under which the
agent registers with the server, new for every process. Each file is written to a temporary
file in the same directory, whose name starts with ".", and renamed over the old one: a
reader sees a whole file, never a part of one. The files stay when the process ends; the
agent never deletes them. One goroutine writes them; Flush writes on the goroutine that calls
it; the two never write at once. An error (the directory cannot be created, the disk is full)
is logged under LIVECOV_DEBUG, once until a write succeeds, and the agent tries again at the
next write; the host never notices.

livecov's build makes `defer Finish()` the first statement of the program's func main.
[Finish] writes the counters as [Flush] does and, when the agent has a server, delivers them
to it (POST /api/v1/agents/<instance>/final, with the registration, within
LIVECOV_FINAL_TIMEOUT, default 2s; the build's metadata first if the server lacks it): a
short-lived process that no pull reached counts all the same, and the server holds the
instance as exited. Finish delivers once, and returns: main's return goes on as without
livecov, with the same exit status. SIGTERM and SIGINT in a program that does not handle
them do the same (see below). What is kept depends on how the process ends:

  - main returns: everything. The deferred Finish writes and delivers the counters as they
    are then (increments that other goroutines make after it, while the process exits, are
    lost).
  - A panic on the main goroutine that nothing recovers: everything up to the panic. Go runs
    deferred calls while the panic unwinds main, so Finish writes and delivers, and the panic
    then goes on and ends the process as it would have (Finish does not stop it).
  - SIGTERM or SIGINT in a program that has no handler of its own: everything up to the
    signal. The agent writes and delivers the counters as Finish does, then the process dies
    of the signal (see "Signals").
  - os.Exit, wherever it is called (log.Fatal calls it; so may a deferred call that runs
    before Finish); a panic on any other goroutine; a fatal runtime error (concurrent map
    writes, out of memory in the Go runtime, a stack overflow); SIGQUIT, and SIGTERM or SIGINT
    with LIVECOV_SIGNALS=off, with Go's default handling; SIGKILL; the kernel's OOM killer:
    no deferred call runs. What is kept is what the last periodic write saw, so at most one
    LIVECOV_FLUSH interval of counts is lost (plus the time one write takes); a process that
    ends so before the first periodic write (one interval after start) and before any call
    of Flush leaves no counters file. `livecov collect DIR` sends what the files hold to the
    server, which counts each process once (it keeps, per counter, the most it was sent).

The agent does not sync the files to the storage device, so a crash of the machine (not of
the process) may lose more than that, as file systems allow.

The counters file holds what GET /livecov/v1/counters would have answered at its write. A
boundary does not rewrite it, and need not: a boundary destroys nothing, so every later write
still accounts for all that the file held.

Without LIVECOV_DIR nothing is kept on disk, Flush does nothing, and no goroutine is started
for it. A livecov server that pulls counters on a schedule loses the same window when a
process stops: the counts since its last pull.

Test binaries (LIVECOV_TEST_DIR set) never write to LIVECOV_DIR: [AfterRun] writes their
coverage.

# Signals

A program that handles SIGTERM itself (signal.Notify) and returns from main to shut down, as
servers commonly do, keeps everything through Finish. The agent then touches no signal: a
handler of its own would change what a signal does to the host, which the agent must never
do. But a Go program can install a handler only through os/signal, so `livecov build` knows
which programs cannot have one: no package of the build imports os/signal. It says so in
zz_build.go (HostSignals false), and only in such a program does the agent take SIGTERM and
SIGINT, and only when it has something to do at the end (a server to deliver to, or
LIVECOV_DIR) and LIVECOV_SIGNALS is not "off". A signal that is ignored when the process
starts (SIGINT in a background job of a shell script, or wherever the parent ignored it)
stays ignored: the agent leaves it alone.

Without livecov, such a signal kills the process at once. With it, the first one makes the
agent write and deliver the counters, as Finish does (once, whichever of the two comes
first), within LIVECOV_FINAL_TIMEOUT; a second SIGTERM or SIGINT cuts the delivery short.
Then the agent stops taking signals, which gives them back to Go's default handling, and
sends the first signal to the process again: it dies of it, with the exit status it would
have had without livecov (killed by SIGTERM or SIGINT; a shell reports 143 or 130). The host
runs on while the agent delivers, for at most the final timeout; should main return
meanwhile, the deferred Finish waits instead of returning, and the process still dies of the
signal.
In the standard library only testing/internal/testdeps (fuzzing) imports os/signal, so test
binaries count as handling signals themselves, which changes nothing: their counters are
AfterRun's. On systems other than Unix the agent takes no signal.

# Reading counters while they change

In set and atomic mode the instrumented code writes counters with sync/atomic, and the agent
reads them with atomic.LoadUint32 (a boundary in set mode swaps them with atomic.SwapUint32),
so every read and every boundary is exact. Reads, boundaries and writes to LIVECOV_DIR hold
one lock, so that none sees a boundary half applied. In count mode the instrumented code uses
plain increments (as `go test -covermode=count` does): a read or a boundary may miss an
increment in flight, which a later read sees, and a program built with -race may report
those accesses. Use atomic mode where counts must be exact under concurrency.
*/
package agent
