package agent

import (
	"errors"
	"fmt"
	"log"
	mathrand "math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Flush writes the counters of this process to its file in the directory named by
// LIVECOV_DIR, now, and returns when the file is in place or could not be written. Without
// LIVECOV_DIR, and in test binaries, it does nothing and returns at once.
//
// livecov's build makes `defer Flush()` the first statement of the program's func main, so
// that the counts up to the return of main are kept. Flush may be called any number of times,
// from any goroutine; it never panics (and, deferred, never stops a panic of the host), and
// it writes to standard error only under LIVECOV_DEBUG. See "Processes that stop" in the
// package documentation for what is kept when the process ends otherwise.
func Flush() {
	defer func() { recover() }()
	if a := stdAgent; a != nil && a.disk != nil {
		a.disk.write(true)
	}
}

// maxServiceName bounds the part of a counters file name taken from the service name, so
// that the name stays well within the 255 bytes that file systems allow.
const maxServiceName = 128

// A diskWriter keeps a copy of an agent's counters in a directory (see COUNTERS.md):
//
//	<build id>.meta.json.gz           the metadata, as GET /livecov/v1/meta serves it
//	<service>-<instance id>.lcc       the counters, as GET /livecov/v1/counters serves them
//	                                  (epoch stamps in set mode)
//
// Both are replaced whole: written to a temporary file in the same directory whose name
// starts with ".", then renamed, so that a reader sees the old file or the new one, never a
// part of one.
type diskWriter struct {
	reg      *registry
	dir      string
	service  string        // the service name as it appears in file names
	instance func() string // the instance id, made on first use
	log      *log.Logger

	mu       sync.Mutex // one write at a time: the periodic writer and Flush
	metaDone bool       // the metadata file is in place
	failed   string     // the last error logged; not logged again until a write succeeds
	wrote    bool       // a counters file was written (logged once)
	buf      []byte     // the encoded counters, reused
}

func newDiskWriter(a *agent) *diskWriter {
	return &diskWriter{
		reg:      a.reg,
		dir:      a.cfg.dir,
		service:  fileNamePart(a.cfg.service, maxServiceName),
		instance: a.instanceID,
		log:      a.cfg.logger,
	}
}

// writeLoop writes the agent's counters to disk every cfg.flush until the agent is closed. It
// writes the metadata first, right away.
func (a *agent) writeLoop() {
	defer a.wg.Done()
	defer a.recoverPanic("disk writer")
	logf(a.cfg.logger, "keeping counters in %s, written every %v", a.cfg.dir, a.cfg.flush)
	a.disk.write(false)
	t := time.NewTicker(a.cfg.flush)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.disk.write(true)
		case <-a.ctx.Done():
			return
		}
	}
}

// write creates the directory and the metadata file if they are missing and, if counters is
// true, replaces the counters file with the counters as they are now. Errors are logged.
func (d *diskWriter) write(counters bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			d.fail(fmt.Errorf("panic (recovered): %v", v))
		}
	}()
	var err error
	if err = os.MkdirAll(d.dir, 0755); err == nil {
		err = d.writeMeta()
		if counters {
			// The counters are worth writing even without the metadata: another instance of
			// the build may have written it, or a later write will.
			if cerr := d.writeCounters(); cerr != nil {
				err = cerr
			}
		}
	}
	if err != nil {
		d.fail(err)
		return
	}
	d.failed = ""
	if counters && !d.wrote {
		d.wrote = true
		logf(d.log, "counters written to %s", filepath.Join(d.dir, d.countersName()))
	}
}

func (d *diskWriter) fail(err error) {
	if msg := err.Error(); msg != d.failed {
		d.failed = msg
		logf(d.log, "cannot keep counters in %s: %v", d.dir, err)
	}
}

func (d *diskWriter) metaName() string {
	return fileNamePart(d.reg.build.ID, maxServiceName) + ".meta.json.gz"
}

func (d *diskWriter) countersName() string {
	return d.service + "-" + d.instance() + ".lcc"
}

// writeMeta writes the metadata file unless it is there: every instance of a build writes
// the same bytes, so the first one's file serves them all.
func (d *diskWriter) writeMeta() error {
	if d.metaDone {
		return nil
	}
	name := d.metaName()
	if _, err := os.Stat(filepath.Join(d.dir, name)); err != nil {
		if err := writeFileAtomic(d.dir, name, d.reg.metaGzip()); err != nil {
			return err
		}
	}
	d.metaDone = true
	return nil
}

func (d *diskWriter) writeCounters() error {
	_, values, _, err := d.reg.counters()
	if err != nil {
		return err
	}
	d.buf, err = encodeCounters(d.buf[:0], counterSet{Build: d.reg.build.ID, Mode: d.reg.build.Mode, Files: values})
	if err != nil {
		return err
	}
	return writeFileAtomic(d.dir, d.countersName(), d.buf)
}

// writeFileAtomic replaces dir/name with data: it writes a temporary file ".name.tmp-*" in dir
// and renames it to name, so that readers see either the old content or all of the new.
// The file gets mode 0644 less the umask, as os.WriteFile would give it.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := createTemp(dir, "."+name+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// createTemp is os.CreateTemp with mode 0644 (less the umask) instead of 0600: the files are
// meant to be read by a collector that may run as another user.
func createTemp(dir, prefix string) (*os.File, error) {
	for i := 0; ; i++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(mathrand.Int63()), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0644)
		if err == nil || !errors.Is(err, os.ErrExist) || i == 100 {
			return f, err
		}
	}
}

// fileNamePart returns s with every character but ASCII letters, digits, '.', '_' and '-'
// replaced by '_', cut to at most limit bytes.
func fileNamePart(s string, limit int) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if len(b) == limit {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}
