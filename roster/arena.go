package roster

import "encoding/binary"

// The Model keeps its entries where the garbage collector does not have to
// walk them: fixed-size slots in slices of pointer-free structs, and every
// string in an arena of byte chunks. A collection cycle then marks a few
// large objects whatever the size of the roster, instead of about ten small
// ones per contact (BenchmarkMarkModel; BENCHMARKS.md, flat cost).

// blob is a run of bytes in an arena: a block of chunk at off, of the size
// class that n bytes take. The zero blob is empty and holds no block.
type blob struct {
	chunk uint32 // index in arena.chunks; 0 is no block
	off   uint32
	n     uint32
}

const (
	chunkSize = 1 << 20 // bytes in a chunk; larger blocks get a chunk of their own
	minBlock  = 16      // the smallest size class
	nClasses  = 17      // 16 B, 32 B, ..., 1 MiB
)

// sizeClass returns the class of a block that holds n bytes (n ≥ 1), and
// the block's size; for n > chunkSize the block is a chunk of its own, of
// size n, in class nClasses.
func sizeClass(n int) (class, size int) {
	class, size = 0, minBlock
	for size < n && class < nClasses {
		class++
		size <<= 1
	}
	if class == nClasses {
		return nClasses, n
	}
	return class, size
}

// arena is a byte allocator with size classes and free lists. Blocks are
// never moved, so a blob stays valid until it is freed. Freed blocks go to
// their class's free list (kept in the blocks themselves) and are reused
// for the next block of that class; chunks are kept for reuse, except the
// dedicated chunks of blocks larger than chunkSize, which are dropped on
// free. Memory is thus bounded by the peak of what the model held, within a
// factor of two for the rounding to a class, until the Model shrinks
// (storage.maybeShrink): then a new arena holds the live blocks only.
//
// arena is not safe for concurrent use: the Model's lock guards it.
type arena struct {
	chunks    [][]byte // chunks[0] is always nil
	free      [nClasses]blob
	cur       uint32   // the chunk new blocks are cut from, 0 for none
	curOff    uint32   // where the next block of cur starts
	bigFree   []uint32 // indices of dropped dedicated chunks, for reuse
	allocated int      // bytes in blocks handed out and not freed
	reserved  int      // bytes in chunks
}

// alloc returns a block for n bytes (n ≥ 1) and its bytes.
func (a *arena) alloc(n int) (blob, []byte) {
	if len(a.chunks) == 0 {
		a.chunks = append(a.chunks, nil)
	}
	class, size := sizeClass(n)
	a.allocated += size
	if class == nClasses {
		c := make([]byte, n)
		a.reserved += n
		var i uint32
		if k := len(a.bigFree); k > 0 {
			i, a.bigFree = a.bigFree[k-1], a.bigFree[:k-1]
			a.chunks[i] = c
		} else {
			i = uint32(len(a.chunks))
			a.chunks = append(a.chunks, c)
		}
		return blob{chunk: i, n: uint32(n)}, c
	}
	if f := a.free[class]; f.chunk != 0 {
		buf := a.chunks[f.chunk][f.off : int(f.off)+size]
		a.free[class] = blob{
			chunk: binary.LittleEndian.Uint32(buf),
			off:   binary.LittleEndian.Uint32(buf[4:]),
		}
		return blob{chunk: f.chunk, off: f.off, n: uint32(n)}, buf[:n]
	}
	if a.cur == 0 || int(a.curOff)+size > chunkSize {
		// What is left of the current chunk is too small for this class; it
		// is lost, at most one block of the largest class per chunk.
		a.cur = uint32(len(a.chunks))
		a.chunks = append(a.chunks, make([]byte, chunkSize))
		a.reserved += chunkSize
		a.curOff = 0
	}
	b := blob{chunk: a.cur, off: a.curOff, n: uint32(n)}
	a.curOff += uint32(size)
	return b, a.chunks[b.chunk][b.off : int(b.off)+n]
}

// release frees b's block. Releasing the zero blob does nothing.
func (a *arena) release(b blob) {
	if b.chunk == 0 {
		return
	}
	class, size := sizeClass(int(b.n))
	a.allocated -= size
	if class == nClasses {
		a.reserved -= size
		a.chunks[b.chunk] = nil
		a.bigFree = append(a.bigFree, b.chunk)
		return
	}
	buf := a.chunks[b.chunk][b.off:]
	next := a.free[class]
	binary.LittleEndian.PutUint32(buf, next.chunk)
	binary.LittleEndian.PutUint32(buf[4:], next.off)
	a.free[class] = blob{chunk: b.chunk, off: b.off}
}

// bytes returns the bytes of b, valid until b is released or rewritten.
func (a *arena) bytes(b blob) []byte {
	if b.chunk == 0 {
		return nil
	}
	return a.chunks[b.chunk][b.off : b.off+b.n]
}

// store puts data in the arena in place of old (the zero blob for none),
// reusing old's block when data fits its class, and returns the new blob.
// Empty data releases old and returns the zero blob.
func (a *arena) store(old blob, data []byte) blob {
	if len(data) == 0 {
		a.release(old)
		return blob{}
	}
	if old.chunk != 0 {
		oc, _ := sizeClass(int(old.n))
		if nc, _ := sizeClass(len(data)); oc == nc && oc != nClasses {
			old.n = uint32(len(data))
			copy(a.bytes(old), data)
			return old
		}
		a.release(old)
	}
	b, buf := a.alloc(len(data))
	copy(buf, data)
	return b
}
