package files

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Layered saves (format 3, D35). A tree is saved as a chain: a base
// snapshot holding every regular file, then deltas holding only the
// regular files new or changed since the previous save. Each save also
// writes a listing: every entry of the tree (directories, files, symlinks,
// hard links, with their metadata) and, for a regular file, its size,
// SHA-256 and the index of the layer holding its content (0: the base).
// A deleted path is simply absent from the listing. A restore rebuilds one
// tar stream from the listing and the layers and sends it to the agent's
// PUT /files, which swaps it in once at the end.

// errStaleListing aborts a delta whose listing no longer describes the
// tree: a file with the listed size, mode and mtime but other content (the
// agent's tar times have whole seconds). The save is redone as a base.
var errStaleListing = errors.New("file changed without its metadata")

// staleError is errStaleListing for one file.
type staleError struct{ name string }

func (e *staleError) Error() string { return e.name + ": " + errStaleListing.Error() }
func (e *staleError) Unwrap() error { return errStaleListing }

// maxListingBytes bounds a listing object (compressed) and its decoded
// JSON; the listing is held in memory, about 200 bytes per entry.
const maxListingBytes = 256 << 20

// listed is one entry of a listing.
type listed struct {
	Name    string `json:"n"`
	Type    byte   `json:"t"`
	Mode    int64  `json:"m"`
	ModTime int64  `json:"mt"` // Unix nanoseconds
	Size    int64  `json:"s,omitempty"`
	Link    string `json:"l,omitempty"`
	SHA256  string `json:"h,omitempty"`
	Layer   int    `json:"y,omitempty"`
}

func (e listed) header() *tar.Header {
	return &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, ModTime: time.Unix(0, e.ModTime),
		Size: e.Size, Linkname: e.Link, Format: tar.FormatPAX}
}

// sameMeta reports whether a regular file's header matches its listed
// entry (then its content is expected unchanged, and checked).
func (e listed) sameMeta(h *tar.Header) bool {
	return e.Type == tar.TypeReg && e.Size == h.Size && e.Mode == h.Mode && e.ModTime == h.ModTime.UnixNano()
}

// diffTree reads the agent's tar stream r of a tree and writes to w a tar
// of the regular files not in prev (by name) with the same metadata;
// those get layer index layer. With prev nil every file is written (a
// base). It returns the tree's new listing. A file listed with the same
// metadata whose content hashes differently returns errStaleListing.
func diffTree(r io.Reader, w io.Writer, prev map[string]listed, layer int) ([]listed, error) {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	var out []listed
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read files: %w", err)
		}
		typ := h.Typeflag
		if typ == tar.TypeRegA { //nolint:staticcheck // normalised
			typ = tar.TypeReg
		}
		e := listed{Name: h.Name, Type: typ, Mode: h.Mode, ModTime: h.ModTime.UnixNano(), Link: h.Linkname}
		switch typ {
		case tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
		case tar.TypeReg:
			e.Size = h.Size
			hs := sha256.New()
			old, ok := prev[h.Name]
			if ok && old.sameMeta(h) {
				if _, err := io.Copy(hs, tr); err != nil {
					return nil, fmt.Errorf("read %s: %w", h.Name, err)
				}
				if e.SHA256 = hex.EncodeToString(hs.Sum(nil)); e.SHA256 != old.SHA256 {
					return nil, &staleError{name: h.Name}
				}
				e.Layer = old.Layer
				break
			}
			if err := tw.WriteHeader(e.header()); err != nil {
				return nil, fmt.Errorf("write header %s: %w", h.Name, err)
			}
			if _, err := io.Copy(io.MultiWriter(tw, hs), tr); err != nil {
				return nil, fmt.Errorf("copy %s: %w", h.Name, err)
			}
			e.SHA256, e.Layer = hex.EncodeToString(hs.Sum(nil)), layer
		default:
			continue // the agent sends none
		}
		out = append(out, e)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish layer: %w", err)
	}
	return out, nil
}

// encodeListing returns the listing's JSON.
func encodeListing(l []listed) ([]byte, error) {
	if l == nil {
		l = []listed{}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode listing: %w", err)
	}
	return b, nil
}

// readListing reads and verifies a listing object (size, SHA-256) and
// checks it against a chain of layers layers long. Any mismatch wraps
// ErrInvalidSnapshot.
func (s *Store) readListing(ctx context.Context, l layout, o Layer, layers int) ([]listed, error) {
	key := l.snapshot(o.Object)
	obj, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(key)})
	var nsk *types.NoSuchKey
	switch {
	case errors.As(err, &nsk):
		return nil, fmt.Errorf("%w: listing %s named by the manifest is missing", ErrInvalidSnapshot, key)
	case err != nil:
		return nil, fmt.Errorf("get listing %s: %w", key, err)
	}
	defer obj.Body.Close()
	if o.Size > maxListingBytes {
		return nil, fmt.Errorf("%w: listing %s over %d bytes", ErrInvalidSnapshot, key, maxListingBytes)
	}
	b, err := io.ReadAll(io.LimitReader(obj.Body, o.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read listing %s: %w", key, err)
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != o.Size || hex.EncodeToString(sum[:]) != o.SHA256 {
		return nil, fmt.Errorf("%w: listing %s: %v", ErrInvalidSnapshot, key, errMismatch)
	}
	out, err := decodeListing(b, layers)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", key, err)
	}
	return out, nil
}

// decodeListing decodes a verified listing object (gzip'd JSON) of a
// chain of layers layers long: entries unique by name, of the types the
// agent sends, naming a layer of the chain. Any fault wraps
// ErrInvalidSnapshot.
func decodeListing(b []byte, layers int) ([]listed, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSnapshot, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxListingBytes+1))
	if err != nil || len(raw) > maxListingBytes {
		return nil, fmt.Errorf("%w: unreadable or too large (%v)", ErrInvalidSnapshot, err)
	}
	var out []listed
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSnapshot, err)
	}
	seen := make(map[string]bool, len(out))
	for _, e := range out {
		switch e.Type {
		case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			return nil, fmt.Errorf("%w: entry %q of type %q", ErrInvalidSnapshot, e.Name, e.Type)
		}
		if e.Name == "" || seen[e.Name] || e.Layer < 0 || e.Layer >= layers || e.Size < 0 {
			return nil, fmt.Errorf("%w: bad entry %q", ErrInvalidSnapshot, e.Name)
		}
		seen[e.Name] = true
	}
	return out, nil
}

// mergeChain writes to w the tree the listing describes as one tar
// stream: its directories, then the regular files of each layer in order
// (a file only from the layer the listing names, its size and SHA-256
// checked), then symlinks and hard links. Every layer object is verified
// (size, SHA-256) before the next is read, and the end of the archive is
// written only when all passed: on any failure the caller breaks the
// stream, so the agent never commits a partial tree.
func (s *Store) mergeChain(ctx context.Context, l layout, layers []Layer, listing []listed, w io.Writer) error {
	tw := tar.NewWriter(w)
	byName := make(map[string]*listed, len(listing))
	for i := range listing {
		e := &listing[i]
		byName[e.Name] = e
		if e.Type == tar.TypeDir {
			if err := tw.WriteHeader(e.header()); err != nil {
				return err
			}
		}
	}
	done := make(map[string]bool)
	for i, o := range layers {
		if err := s.mergeLayer(ctx, l, i, o, byName, done, tw); err != nil {
			return err
		}
	}
	for _, e := range listing {
		switch e.Type {
		case tar.TypeReg:
			if !done[e.Name] {
				return fmt.Errorf("%w: file %q missing from layer %d", ErrInvalidSnapshot, e.Name, e.Layer)
			}
		case tar.TypeSymlink, tar.TypeLink:
			if err := tw.WriteHeader(e.header()); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// mergeLayer copies layer i's files the listing assigns to it into tw.
func (s *Store) mergeLayer(ctx context.Context, l layout, i int, o Layer, byName map[string]*listed, done map[string]bool, tw *tar.Writer) error {
	key := l.snapshot(o.Object)
	obj, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(key)})
	var nsk *types.NoSuchKey
	switch {
	case errors.As(err, &nsk):
		return fmt.Errorf("%w: layer %s named by the manifest is missing", ErrInvalidSnapshot, key)
	case err != nil:
		return fmt.Errorf("get layer %s: %w", key, err)
	}
	defer obj.Body.Close()
	if n := aws.ToInt64(obj.ContentLength); obj.ContentLength != nil && n != o.Size {
		return fmt.Errorf("%w: layer %s is %d bytes, manifest says %d", ErrInvalidSnapshot, key, n, o.Size)
	}
	want, _ := hex.DecodeString(o.SHA256) // checked by decodeManifest
	var fail firstFailure
	v := &verifier{r: obj.Body, h: sha256.New(), size: o.Size, sum: want, fail: &fail}
	zr, err := gzip.NewReader(v)
	if err != nil {
		fail.set(err, true)
		return fail.wrap(key)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail.set(err, true)
			return fail.wrap(key)
		}
		e := byName[h.Name]
		if e == nil || e.Type != tar.TypeReg || e.Layer != i {
			continue // deleted or superseded by a later layer
		}
		if h.Size != e.Size || done[e.Name] {
			fail.set(fmt.Errorf("%w: %s is %d bytes, listing says %d", errMismatch, h.Name, h.Size, e.Size), true)
			return fail.wrap(key)
		}
		if err := tw.WriteHeader(e.header()); err != nil {
			return err
		}
		hs := sha256.New()
		if _, err := io.Copy(io.MultiWriter(tw, hs), tr); err != nil {
			if ferr := fail.wrap(key); ferr != nil {
				return ferr
			}
			return fmt.Errorf("copy %s: %w", h.Name, err)
		}
		if hex.EncodeToString(hs.Sum(nil)) != e.SHA256 {
			fail.set(fmt.Errorf("%w: %s sha256 differs from the listing", errMismatch, h.Name), true)
			return fail.wrap(key)
		}
		done[e.Name] = true
	}
	if err := v.finish(); err != nil {
		return fail.wrap(key)
	}
	return nil
}
