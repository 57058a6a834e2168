package roster

import (
	"hash/maphash"
	"iter"
	"slices"
)

// The Model's entries live in storage the garbage collector does not walk:
// fixed-size slots in pointer-free slices, their strings and lists as
// records in the arena (arena.go, record.go), and an index from the hash of
// a bare JID to its contact's slot. This file holds that machinery (slots,
// free lists, the hash index, the resource lists, shrinking), so that the
// Model's own code deals in contacts and resources and keeps to the rules.

// contactRef names a contact's slot in a storage; the zero contactRef is
// none. A ref stays valid until its contact is freed or the storage shrinks.
type contactRef uint32

// resourceRef names a resource's slot in a storage; the zero resourceRef is
// none. A ref stays valid until its resource is freed or the storage
// shrinks.
type resourceRef uint32

// contactSlot is the entry for one bare JID.
type contactSlot struct {
	key      blob        // the bare JID's string
	item     blob        // the item record, when inRoster
	hash     uint64      // of key, with the storage's seed
	nextHash contactRef  // the next slot with the same hash
	first    resourceRef // the first resource, in the order they came online
	nres     uint32      // how many resources
	bytes    uint32      // the block bytes of its resources' records
	inRoster bool
	live     bool // false for a free slot
}

// resourceSlot is the entry for one full JID.
type resourceSlot struct {
	state   blob        // the state record, full JID first
	marks   blob        // the marks record; zero when fresh
	next    resourceRef // the contact's next resource
	updated stamp
	delay   stamp
}

// marked reports whether r carries at least one mark.
func (r *resourceSlot) marked() bool { return r.marks.chunk != 0 }

// The storage shrinks when three quarters of it is free, from these sizes
// on: a client whose roster went from a million entries to a thousand gives
// the memory back.
const (
	defaultShrinkSlots = 1 << 14
	defaultShrinkBytes = 16 * chunkSize
)

// storage holds a Model's contacts and resources. Slot i of a slice is
// ref i+1. Freed slots go to a free list and are reused before the slices
// grow. Contacts with equal hashes form a chain through nextHash; a
// contact's resources form a list through next, in the order they were
// added.
//
// storage is not safe for concurrent use: the Model's lock guards it.
type storage struct {
	arena         arena
	contacts      []contactSlot
	resources     []resourceSlot
	freeContacts  []contactRef
	freeResources []resourceRef
	index         map[uint64]contactRef // hash → the first contact with it
	nContacts     int                   // live contacts
	nResources    int                   // live resources

	seed     maphash.Seed
	hashMask uint64 // all ones; tests keep fewer bits to make keys collide

	shrinkSlots int // see maybeShrink
	shrinkBytes int
}

func newStorage() storage {
	return storage{
		index:       make(map[uint64]contactRef),
		seed:        maphash.MakeSeed(),
		hashMask:    ^uint64(0),
		shrinkSlots: defaultShrinkSlots,
		shrinkBytes: defaultShrinkBytes,
	}
}

// contact returns contact ci's slot, which must be live.
func (s *storage) contact(ci contactRef) *contactSlot { return &s.contacts[ci-1] }

// resource returns resource ri's slot, which must be live.
func (s *storage) resource(ri resourceRef) *resourceSlot { return &s.resources[ri-1] }

// get returns the bytes of record b, valid until b is put again or freed.
func (s *storage) get(b blob) []byte { return s.arena.bytes(b) }

// put stores data in place of record old (the zero blob for none) and
// returns the record that now holds it; empty data frees old.
func (s *storage) put(old blob, data []byte) blob { return s.arena.store(old, data) }

// hash returns the index's hash of bare JID key.
func (s *storage) hash(key string) uint64 { return maphash.String(s.seed, key) & s.hashMask }

// lookup returns the contact with bare JID key, 0 if none.
func (s *storage) lookup(key string) contactRef {
	h := s.hash(key)
	for ci := s.index[h]; ci != 0; ci = s.contact(ci).nextHash {
		if c := s.contact(ci); c.hash == h && string(s.get(c.key)) == key {
			return ci
		}
	}
	return 0
}

// takeSlot returns a slot for a new entry: the last one freed, or a zero
// one appended to slots.
func takeSlot[S any, R ~uint32](slots *[]S, free *[]R) R {
	if n := len(*free); n > 0 {
		i := (*free)[n-1]
		*free = (*free)[:n-1]
		return i
	}
	var zero S
	*slots = append(*slots, zero)
	return R(len(*slots))
}

// addContact adds a contact for bare JID key, which has none, without item
// or resources.
func (s *storage) addContact(key string) contactRef {
	ci := takeSlot(&s.contacts, &s.freeContacts)
	h := s.hash(key)
	b, buf := s.arena.alloc(len(key))
	copy(buf, key)
	*s.contact(ci) = contactSlot{
		key:      b,
		hash:     h,
		nextHash: s.index[h],
		live:     true,
	}
	s.index[h] = ci
	s.nContacts++
	return ci
}

// freeContact frees contact ci, which has no resources left, and its
// records.
func (s *storage) freeContact(ci contactRef) {
	c := s.contact(ci)
	if head := s.index[c.hash]; head == ci {
		if c.nextHash == 0 {
			delete(s.index, c.hash)
		} else {
			s.index[c.hash] = c.nextHash
		}
	} else {
		for prev := head; prev != 0; prev = s.contact(prev).nextHash {
			if p := s.contact(prev); p.nextHash == ci {
				p.nextHash = c.nextHash
				break
			}
		}
	}
	s.arena.release(c.key)
	s.arena.release(c.item)
	*c = contactSlot{}
	s.freeContacts = append(s.freeContacts, ci)
	s.nContacts--
}

// growContacts makes room for n more contacts.
func (s *storage) growContacts(n int) { s.contacts = slices.Grow(s.contacts, n) }

// allContacts yields every live contact. The loop may free the contact it
// was given, but must not add one.
func (s *storage) allContacts() iter.Seq[contactRef] {
	return func(yield func(contactRef) bool) {
		for i := range s.contacts {
			if s.contacts[i].live && !yield(contactRef(i+1)) {
				return
			}
		}
	}
}

// findResource returns contact ci's resource with full JID full, 0 if none,
// and the resource before it in the contact's list (0 when it is first).
func (s *storage) findResource(ci contactRef, full string) (ri, prev resourceRef) {
	for ri = s.contact(ci).first; ri != 0; prev, ri = ri, s.resource(ri).next {
		if string(stateJID(s.get(s.resource(ri).state))) == full {
			return ri, prev
		}
	}
	return 0, 0
}

// addResource appends an empty resource to contact ci's list. The caller
// stores its state.
func (s *storage) addResource(ci contactRef) resourceRef {
	ri := takeSlot(&s.resources, &s.freeResources)
	c := s.contact(ci)
	if c.first == 0 {
		c.first = ri
	} else {
		last := c.first
		for s.resource(last).next != 0 {
			last = s.resource(last).next
		}
		s.resource(last).next = ri
	}
	c.nres++
	s.nResources++
	return ri
}

// freeResource takes resource ri out of contact ci's list, where it follows
// prev (0 when it is first), and frees it and its records. The contact
// stays, even when it has nothing left.
func (s *storage) freeResource(ci contactRef, ri, prev resourceRef) {
	r := s.resource(ri)
	c := s.contact(ci)
	if prev == 0 {
		c.first = r.next
	} else {
		s.resource(prev).next = r.next
	}
	c.nres--
	s.arena.release(r.state)
	s.arena.release(r.marks)
	*r = resourceSlot{}
	s.freeResources = append(s.freeResources, ri)
	s.nResources--
}

// resourcesOf yields contact ci's resources in the order they were added.
// The loop may free the resource it was given (the next one is read
// before), but must not add one.
func (s *storage) resourcesOf(ci contactRef) iter.Seq[resourceRef] {
	return func(yield func(resourceRef) bool) {
		for ri := s.contact(ci).first; ri != 0; {
			next := s.resource(ri).next
			if !yield(ri) {
				return
			}
			ri = next
		}
	}
}

// maybeShrink rebuilds the storage when at most a quarter of its slots, or
// of its arena, is in use: the free lists keep what the model once held,
// and a new, packed copy lets the garbage collector free the rest. A
// rebuild costs O(entries), and comes only after three times as many were
// removed, so removals stay O(1) amortized. It renumbers every slot: call
// it only where no ref is held, at the end of an update.
func (s *storage) maybeShrink() {
	slots := len(s.contacts) + len(s.resources)
	live := s.nContacts + s.nResources
	if !(slots > 0 && slots >= s.shrinkSlots && live*4 <= slots) &&
		!(s.arena.reserved > 0 && s.arena.reserved >= s.shrinkBytes && s.arena.allocated*4 <= s.arena.reserved) {
		return
	}
	oldArena, oldContacts, oldResources := &s.arena, s.contacts, s.resources
	var a arena
	s.contacts = make([]contactSlot, 0, s.nContacts)
	s.resources = make([]resourceSlot, 0, s.nResources)
	s.freeContacts, s.freeResources = nil, nil
	s.index = make(map[uint64]contactRef, s.nContacts)
	for i := range oldContacts {
		c := &oldContacts[i]
		if !c.live {
			continue
		}
		s.contacts = append(s.contacts, contactSlot{
			key:      a.store(blob{}, oldArena.bytes(c.key)),
			item:     a.store(blob{}, oldArena.bytes(c.item)),
			hash:     c.hash,
			nextHash: s.index[c.hash],
			nres:     c.nres,
			bytes:    c.bytes,
			inRoster: c.inRoster,
			live:     true,
		})
		ci := contactRef(len(s.contacts))
		s.index[c.hash] = ci
		var last resourceRef
		for ri := c.first; ri != 0; ri = oldResources[ri-1].next {
			r := &oldResources[ri-1]
			s.resources = append(s.resources, resourceSlot{
				state:   a.store(blob{}, oldArena.bytes(r.state)),
				marks:   a.store(blob{}, oldArena.bytes(r.marks)),
				updated: r.updated,
				delay:   r.delay,
			})
			n := resourceRef(len(s.resources))
			if last == 0 {
				s.contact(ci).first = n
			} else {
				s.resource(last).next = n
			}
			last = n
		}
	}
	s.arena = a
}
