package prosodytest

import (
	"bytes"
	"context"
	"strings"
	"sync"
)

// maxLogLines bounds the lines a Server keeps in memory.
const maxLogLines = 50000

// logBuffer collects a Prosody process's console output, line by line, and
// wakes up waiters on every new line.
type logBuffer struct {
	mu      sync.Mutex
	lines   []string // the last lines
	first   int      // index (mark) of lines[0]
	partial []byte
	changed chan struct{}
}

func newLogBuffer() *logBuffer {
	return &logBuffer{changed: make(chan struct{})}
}

// Write implements io.Writer for the process's stdout and stderr.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.appendLocked(string(b.partial[:i]))
		b.partial = b.partial[i+1:]
		added = true
	}
	if added {
		b.notifyLocked()
	}
	return len(p), nil
}

// Println adds a line of the harness's own.
func (b *logBuffer) Println(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.appendLocked(s)
	b.notifyLocked()
}

func (b *logBuffer) appendLocked(line string) {
	b.lines = append(b.lines, line)
	if len(b.lines) > maxLogLines {
		drop := len(b.lines) - maxLogLines
		b.lines = append(b.lines[:0:0], b.lines[drop:]...)
		b.first += drop
	}
}

func (b *logBuffer) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// mark returns the index that the next line will have.
func (b *logBuffer) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first + len(b.lines)
}

// tail returns the last n lines.
func (b *logBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := max(len(b.lines)-n, 0)
	return strings.Join(b.lines[start:], "\n")
}

// find returns the first line at index >= since that contains substr.
func (b *logBuffer) find(since int, substr string) (line string, next int, ok bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := max(since-b.first, 0)
	for ; i < len(b.lines); i++ {
		if strings.Contains(b.lines[i], substr) {
			return b.lines[i], b.first + i + 1, true, nil
		}
	}
	return "", b.first + len(b.lines), false, b.changed
}

// wait blocks until a line at index >= since contains substr, or until done
// is closed or ctx ends.
func (b *logBuffer) wait(ctx context.Context, since int, substr string, done <-chan struct{}) (string, int, error) {
	for {
		line, next, ok, changed := b.find(since, substr)
		if ok {
			return line, next, nil
		}
		select {
		case <-changed:
		case <-done:
			// One last look: the line may have come with the exit.
			if line, next, ok, _ := b.find(since, substr); ok {
				return line, next, nil
			}
			return "", next, errExited
		case <-ctx.Done():
			return "", next, ctx.Err()
		}
	}
}
