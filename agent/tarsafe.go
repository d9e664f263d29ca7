package agent

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/workspaced/workspaced/agent/api"
)

// maxLinkHops bounds symlink expansion when checking where links lead
// (Linux gives up at 40 too).
const maxLinkHops = 40

func refused(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{api.ErrRefused}, a...)...)
}

// cleanEntryPath validates an archive member name and returns it relative
// and clean ("" for the root itself). It refuses absolute names, any ".."
// component, NUL bytes and names under the agent's reserved prefix.
func cleanEntryPath(name string) (string, error) {
	if name == "" {
		return "", refused("empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", refused("name %q contains NUL", name)
	}
	if strings.HasPrefix(name, "/") {
		return "", refused("absolute name %q", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", refused("name %q contains ..", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	if first, _, _ := strings.Cut(clean, "/"); strings.HasPrefix(first, agentDirPrefix) {
		return "", refused("name %q is reserved", name)
	}
	return clean, nil
}

// symlinkInside reports whether a symlink at rel (clean, relative) with
// target points inside the tree by its text alone. Absolute targets must lie
// under final, the directory the tree will live at. checkLinks then checks
// the links against each other.
func symlinkInside(rel, target, final string) bool {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return false
	}
	if strings.HasPrefix(target, "/") {
		t := path.Clean(target)
		return t == final || strings.HasPrefix(t, strings.TrimSuffix(final, "/")+"/")
	}
	j := path.Clean(path.Join(path.Dir(rel), target))
	return j != ".." && !strings.HasPrefix(j, "../")
}

// extractor writes archive members under root, never through a symlink.
type extractor struct {
	root    string // the staging directory
	final   string // where the tree will live (for absolute link targets)
	budget  int64  // bytes of file content left
	checked map[string]bool
	dirs    []dirMeta
}

type dirMeta struct {
	path  string
	mode  fs.FileMode
	mtime time.Time
}

func (x *extractor) extract(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readError(err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	for i := len(x.dirs) - 1; i >= 0; i-- { // deepest last-created first
		d := x.dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", d.path, err)
		}
		_ = os.Chtimes(d.path, d.mtime, d.mtime)
	}
	return nil
}

// readError classifies a failure to read the archive: over the size limit
// (api.ErrTooLarge) or not a valid tar stream (api.ErrRefused).
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: over %d bytes", api.ErrTooLarge, mbe.Limit)
	}
	return refused("read archive: %v", err)
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanEntryPath(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the root itself: its mode is the mount's business
		}
		return refused("member %q is not a directory", hdr.Name)
	}
	if err := x.mkParents(rel); err != nil {
		return err
	}
	dst := filepath.Join(x.root, filepath.FromSlash(rel))
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(rel, dst, hdr)
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives still use TypeRegA
		return x.file(dst, hdr, r)
	case tar.TypeSymlink:
		if !symlinkInside(rel, hdr.Linkname, x.final) {
			return refused("symlink %q points outside (%q)", rel, hdr.Linkname)
		}
		if err := x.clear(dst); err != nil {
			return err
		}
		return wrapFS("symlink", rel, os.Symlink(hdr.Linkname, dst))
	case tar.TypeLink:
		return x.hardlink(rel, dst, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return refused("device file %q", rel)
	case tar.TypeFifo:
		return refused("FIFO %q", rel)
	default:
		return refused("member %q has unsupported type %q", rel, hdr.Typeflag)
	}
}

// mkParents makes sure every parent of rel is a real directory in the
// staging tree (creating missing ones): a member is never written through
// a symlink, so extraction cannot leave the staging tree.
func (x *extractor) mkParents(rel string) error {
	dir := path.Dir(rel)
	if dir == "." || x.checked[dir] {
		return nil
	}
	cur := ""
	for _, c := range strings.Split(dir, "/") {
		cur = path.Join(cur, c)
		if x.checked[cur] {
			continue
		}
		p := filepath.Join(x.root, filepath.FromSlash(cur))
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return wrapFS("mkdir", cur, err)
			}
		case err != nil:
			return wrapFS("stat", cur, err)
		case !fi.IsDir():
			return refused("member %q passes through %q, which is not a directory", rel, cur)
		}
		x.checked[cur] = true
	}
	return nil
}

func (x *extractor) dir(rel, dst string, hdr *tar.Header) error {
	fi, err := os.Lstat(dst)
	if err == nil && !fi.IsDir() {
		if err := os.Remove(dst); err != nil {
			return wrapFS("replace", rel, err)
		}
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dst, 0o755); err != nil {
			return wrapFS("mkdir", rel, err)
		}
	} else if err != nil {
		return wrapFS("stat", rel, err)
	}
	x.checked[rel] = true
	// Final modes are applied at the end, so a read-only directory does
	// not stop its own members from being written.
	x.dirs = append(x.dirs, dirMeta{path: dst, mode: perm(hdr.Mode) | stickyBit(hdr.Mode), mtime: hdr.ModTime})
	return nil
}

func (x *extractor) file(dst string, hdr *tar.Header, r io.Reader) error {
	if hdr.Size < 0 || hdr.Size > x.budget {
		return fmt.Errorf("%w: file %q needs %d bytes", api.ErrTooLarge, hdr.Name, hdr.Size)
	}
	x.budget -= hdr.Size
	if err := x.clear(dst); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return wrapFS("create", hdr.Name, err)
	}
	_, err = io.CopyN(f, r, hdr.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return wrapFS("write", hdr.Name, err)
		}
		return readError(err)
	}
	if err := os.Chmod(dst, perm(hdr.Mode)); err != nil {
		return wrapFS("chmod", hdr.Name, err)
	}
	_ = os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
	return nil
}

func (x *extractor) hardlink(rel, dst, linkname string) error {
	src, err := cleanEntryPath(linkname)
	if err != nil || src == "" {
		return refused("hard link %q points outside (%q)", rel, linkname)
	}
	if err := x.mkParents(src); err != nil {
		return err
	}
	sp := filepath.Join(x.root, filepath.FromSlash(src))
	fi, err := os.Lstat(sp)
	if err != nil || !fi.Mode().IsRegular() {
		return refused("hard link %q: target %q is not a regular file in the archive", rel, linkname)
	}
	if src == rel {
		return nil
	}
	if err := x.clear(dst); err != nil {
		return err
	}
	return wrapFS("link", rel, os.Link(sp, dst))
}

// clear removes whatever an earlier member left at dst (later members
// win, as with tar(1)).
func (x *extractor) clear(dst string) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return wrapFS("stat", dst, err)
	}
	// What was checked to be a directory may be gone or become a link.
	x.checked = map[string]bool{"": true}
	if fi.IsDir() {
		return wrapFS("replace", dst, os.RemoveAll(dst))
	}
	return wrapFS("replace", dst, os.Remove(dst))
}

func perm(mode int64) fs.FileMode { return fs.FileMode(mode) & fs.ModePerm }

func stickyBit(mode int64) fs.FileMode {
	if mode&0o1000 != 0 {
		return fs.ModeSticky
	}
	return 0
}

func wrapFS(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %s %s: %w", api.ErrTooLarge, op, name, err)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// checkLinks resolves every symlink under root the way the kernel will once
// the tree lives at final, and refuses the tree if one leads outside it
// (through other links, "..", or absolute targets), or loops.
func checkLinks(root, final string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if err := resolveInside(root, final, filepath.ToSlash(rel)); err != nil {
			return err
		}
		return nil
	})
}

// resolveInside follows the symlink at rel (relative to root) component by
// component, expanding every symlink met, and fails if the walk goes above
// root. Past a component that does not exist the rest is followed by its
// text (the kernel would fail there anyway).
func resolveInside(root, final, rel string) error {
	cur := splitPath(path.Dir(rel)) // a real directory: no symlink in it
	todo := []string{path.Base(rel)}
	hops, missing := 0, false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return refused("symlink %q leads outside the workspace", rel)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(append([]string(nil), cur...), c)
		if missing {
			cur = next
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(strings.Join(next, "/")))
		fi, err := os.Lstat(p)
		if err != nil {
			missing = true
			cur = next
			continue
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return refused("symlink %q: too many levels of links", rel)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return wrapFS("readlink", rel, err)
		}
		if strings.HasPrefix(target, "/") {
			t := path.Clean(target)
			f := path.Clean(final)
			if t != f && !strings.HasPrefix(t, strings.TrimSuffix(f, "/")+"/") {
				return refused("symlink %q leads outside the workspace", rel)
			}
			cur = nil
			target = strings.TrimPrefix(strings.TrimPrefix(t, f), "/")
		}
		todo = append(splitPath(target), todo...)
	}
	return nil
}

func splitPath(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
