package caps

import (
	"cmp"
	"crypto"
	"crypto/sha1"
	_ "crypto/sha256" // links sha-224 and sha-256 for VerHash and Verify
	_ "crypto/sha512" // links sha-384 and sha-512 for VerHash and Verify
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
)

// Errors for ill-formed disco#info (XEP-0115 §5.4) and for hash functions.
// Functions of this package wrap them with details; test them with errors.Is.
var (
	// ErrDuplicateIdentity: two identities with the same category, type,
	// xml:lang and name.
	ErrDuplicateIdentity = errors.New("caps: duplicate identity")
	// ErrDuplicateFeature: the same feature listed twice.
	ErrDuplicateFeature = errors.New("caps: duplicate feature")
	// ErrDuplicateFormType: two extended information forms with the same
	// FORM_TYPE.
	ErrDuplicateFormType = errors.New("caps: duplicate FORM_TYPE")
	// ErrDuplicateField: two fields with the same var in one form (XEP-0004
	// requires var to be unique within a form), two fields without var
	// included.
	ErrDuplicateField = errors.New("caps: duplicate form field")
	// ErrFormType: a hidden FORM_TYPE field with no value or with different
	// values, or a form with several FORM_TYPE fields.
	ErrFormType = errors.New("caps: malformed FORM_TYPE")
	// ErrUnknownHash: a hash name outside the IANA Hash Function Textual
	// Names registry, or a crypto.Hash that has no name there.
	ErrUnknownHash = errors.New("caps: unknown hash function")
	// ErrHashUnavailable: a hash function that is not linked into the binary.
	ErrHashUnavailable = errors.New("caps: hash function not available")
	// ErrMismatch: the verification string does not match the disco#info.
	ErrMismatch = errors.New("caps: verification string mismatch")
)

const formTypeVar = "FORM_TYPE"

// Ver returns the SHA-1 verification string of info (XEP-0115 §5.1), the
// value of the ver attribute of a <c/> element with hash='sha-1'.
//
// It returns an error wrapping ErrDuplicateIdentity, ErrDuplicateFeature,
// ErrDuplicateFormType, ErrDuplicateField or ErrFormType when info is
// ill-formed (§5.4). Forms without a FORM_TYPE field of type hidden are
// ignored, as the XEP requires. Form fields are read as they came over the
// wire (form.FieldData.Raw), and a field without var, such as a fixed field,
// is hashed with an empty var. The node, the XMLName fields, and the form
// titles, instructions and types do not enter the hash.
//
// Unlike disco.Info.Hash, Ver never modifies info, so it is safe to call
// concurrently on shared values.
func Ver(info disco.Info) (string, error) {
	var buf [1024]byte
	s, err := appendS(buf[:0], &info)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(s)
	var out [28]byte // base64.StdEncoding.EncodedLen(sha1.Size)
	base64.StdEncoding.Encode(out[:], sum[:])
	return string(out[:]), nil
}

// VerHash is like Ver with the hash function h, for example crypto.SHA256;
// convert the mellium.im/xmpp/crypto.Hash of a disco.Caps with crypto.Hash(c.Hash).
// It returns an error wrapping ErrHashUnavailable if h is not linked into the
// binary and ErrUnknownHash if h has no XEP-0115 name (see HashName). This
// package links SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512; import
// crypto/md5 for MD5.
func VerHash(info disco.Info, h crypto.Hash) (string, error) {
	if !h.Available() {
		return "", fmt.Errorf("%w: %v", ErrHashUnavailable, h)
	}
	if _, err := HashName(h); err != nil {
		return "", err
	}
	var buf [1024]byte
	s, err := appendS(buf[:0], &info)
	if err != nil {
		return "", err
	}
	d := h.New()
	d.Write(s) // a hash.Hash never returns an error
	return base64.StdEncoding.EncodeToString(d.Sum(nil)), nil
}

// Verify checks ver, received with the hash name hash in a <c/> element,
// against info, the disco#info answer for NODE#VER. It returns nil when they
// match, and otherwise an error wrapping ErrMismatch, ErrUnknownHash,
// ErrHashUnavailable or one of the ill-formed errors of Ver. Only a nil result
// allows ver to be cached for every entity that advertises it.
func Verify(info disco.Info, hash, ver string) error {
	h, err := ParseHash(hash)
	if err != nil {
		return err
	}
	got, err := VerHash(info, h)
	if err != nil {
		return err
	}
	if got != ver {
		return fmt.Errorf("%w: got %s, want %s", ErrMismatch, got, ver)
	}
	return nil
}

// ParseHash returns the hash function for name, the value of the hash
// attribute of a <c/> element: a name of the IANA Hash Function Textual Names
// registry ("md5", "sha-1", "sha-224", "sha-256", "sha-384", "sha-512").
// Names are case-sensitive. It returns an error wrapping ErrUnknownHash for
// other names, including the registry's "md2", "shake128" and "shake256",
// which have no crypto.Hash.
func ParseHash(name string) (crypto.Hash, error) {
	switch name {
	case "md5":
		return crypto.MD5, nil
	case "sha-1":
		return crypto.SHA1, nil
	case "sha-224":
		return crypto.SHA224, nil
	case "sha-256":
		return crypto.SHA256, nil
	case "sha-384":
		return crypto.SHA384, nil
	case "sha-512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownHash, name)
}

// HashName returns the IANA Hash Function Textual Name of h, the inverse of
// ParseHash. It returns an error wrapping ErrUnknownHash for hash functions
// that have no such name, such as crypto.SHA3_256.
func HashName(h crypto.Hash) (string, error) {
	switch h {
	case crypto.MD5:
		return "md5", nil
	case crypto.SHA1:
		return "sha-1", nil
	case crypto.SHA224:
		return "sha-224", nil
	case crypto.SHA256:
		return "sha-256", nil
	case crypto.SHA384:
		return "sha-384", nil
	case crypto.SHA512:
		return "sha-512", nil
	}
	return "", fmt.Errorf("%w: %v", ErrUnknownHash, h)
}

// appendS appends the string S of XEP-0115 §5.1 to dst. It sorts copies, never
// the slices of info; the fixed-size arrays keep small inputs off the heap.
func appendS(dst []byte, in *disco.Info) ([]byte, error) {
	ids := in.Identity
	var idxBuf [8]int
	idx := idxBuf[:0]
	for i := range ids {
		idx = append(idx, i)
	}
	slices.SortFunc(idx, func(a, b int) int { return compareIdentity(&ids[a], &ids[b]) })
	for k, i := range idx {
		id := &ids[i]
		if k > 0 && compareIdentity(&ids[idx[k-1]], id) == 0 {
			return dst, fmt.Errorf("%w %q", ErrDuplicateIdentity, id.Category+"/"+id.Type+"/"+id.Lang+"/"+id.Name)
		}
		dst = append(dst, id.Category...)
		dst = append(dst, '/')
		dst = append(dst, id.Type...)
		dst = append(dst, '/')
		dst = append(dst, id.Lang...)
		dst = append(dst, '/')
		dst = append(dst, id.Name...)
		dst = append(dst, '<')
	}

	var featBuf [32]string
	feats := featBuf[:0]
	for _, f := range in.Features {
		feats = append(feats, f.Var)
	}
	slices.Sort(feats)
	for k, f := range feats {
		if k > 0 && feats[k-1] == f {
			return dst, fmt.Errorf("%w %q", ErrDuplicateFeature, f)
		}
		dst = append(dst, f...)
		dst = append(dst, '<')
	}

	if len(in.Form) == 0 {
		return dst, nil
	}
	return appendForms(dst, in.Form)
}

// compareIdentity orders identities byte-wise by category, type, xml:lang and
// then name, the fields of S in their order.
func compareIdentity(a, b *info.Identity) int {
	return cmp.Or(
		strings.Compare(a.Category, b.Category),
		strings.Compare(a.Type, b.Type),
		strings.Compare(a.Lang, b.Lang),
		strings.Compare(a.Name, b.Name),
	)
}

// typedForm is a form that enters the hash, with the value of its FORM_TYPE.
type typedForm struct {
	typ  string
	data *form.Data
}

// appendForms appends the part of S for the extended information forms.
func appendForms(dst []byte, forms []form.Data) ([]byte, error) {
	var formBuf [4]typedForm
	typed := formBuf[:0]
	for i := range forms {
		typ, ok, err := formType(&forms[i])
		if err != nil {
			return dst, err
		}
		if ok {
			typed = append(typed, typedForm{typ: typ, data: &forms[i]})
		}
	}
	slices.SortFunc(typed, func(a, b typedForm) int { return strings.Compare(a.typ, b.typ) })
	for k := 1; k < len(typed); k++ {
		if typed[k-1].typ == typed[k].typ {
			return dst, fmt.Errorf("%w %q", ErrDuplicateFormType, typed[k].typ)
		}
	}

	var fieldBuf [16]form.FieldData
	var valBuf [16]string
	for _, tf := range typed {
		dst = append(dst, tf.typ...)
		dst = append(dst, '<')

		fields := fieldBuf[:0]
		tf.data.ForFields(func(f form.FieldData) {
			if f.Var != formTypeVar {
				fields = append(fields, f)
			}
		})
		slices.SortFunc(fields, func(a, b form.FieldData) int { return strings.Compare(a.Var, b.Var) })
		for k := range fields {
			f := &fields[k]
			if k > 0 && fields[k-1].Var == f.Var {
				return dst, fmt.Errorf("%w %q in form %q", ErrDuplicateField, f.Var, tf.typ)
			}
			dst = append(dst, f.Var...)
			dst = append(dst, '<')
			// f.Raw is the form's own slice: sort a copy.
			vals := append(valBuf[:0], f.Raw...)
			slices.Sort(vals)
			for _, v := range vals {
				dst = append(dst, v...)
				dst = append(dst, '<')
			}
		}
	}
	return dst, nil
}

// formType returns the FORM_TYPE of d. ok is false for a form that the hash
// ignores: no FORM_TYPE field, or one that is not of type hidden.
func formType(d *form.Data) (typ string, ok bool, err error) {
	var n int
	var ft form.FieldData
	d.ForFields(func(f form.FieldData) {
		if f.Var == formTypeVar {
			n++
			ft = f
		}
	})
	switch {
	case n == 0:
		return "", false, nil
	case n > 1:
		return "", false, fmt.Errorf("%w: %d FORM_TYPE fields in one form", ErrFormType, n)
	case ft.Type != form.TypeHidden:
		return "", false, nil
	case len(ft.Raw) == 0:
		return "", false, fmt.Errorf("%w: no value", ErrFormType)
	}
	for _, v := range ft.Raw[1:] {
		if v != ft.Raw[0] {
			return "", false, fmt.Errorf("%w: several values %q and %q", ErrFormType, ft.Raw[0], v)
		}
	}
	return ft.Raw[0], true, nil
}
