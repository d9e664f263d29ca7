package agent

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/workspaced/workspaced/agent/api"
)

// agentDirPrefix names the agent's own scratch directories inside the work
// directory (staging and trash of PUT /files); GET /files leaves them out.
const agentDirPrefix = ".workspace-agent-"

// treeDir returns the directory of the tree the request names (path
// /files/{tree}; /files is api.TreeWorkspace), creating the session tree
// (private, as Claude Code does) if it does not exist yet.
func (s *Server) treeDir(r *http.Request) (string, error) {
	switch t := r.PathValue("tree"); t {
	case "", api.TreeWorkspace:
		return s.opts.WorkDir, nil
	case api.TreeSession:
		dir := filepath.Join(s.opts.Home, ".claude")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
		return dir, nil
	default:
		return "", fmt.Errorf("%w: unknown tree %q", api.ErrBadRequest, t)
	}
}

func (s *Server) handleGetFiles(w http.ResponseWriter, r *http.Request) {
	dir, err := s.treeDir(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.files.RLock()
	defer s.files.RUnlock()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := writeTar(r.Context(), w, dir); err != nil {
		s.log.Warn("stream files failed", "err", err)
		// The status is sent: break the connection so the client sees a
		// failed transfer, never a short archive that looks complete.
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) handlePutFiles(w http.ResponseWriter, r *http.Request) {
	dir, err := s.treeDir(r)
	if err != nil {
		writeError(w, err)
		return
	}
	release, err := s.acquire()
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxTarBytes)
	if err := replaceDir(dir, body, s.opts.MaxTarBytes, &s.files); err != nil {
		s.log.Warn("replace files refused", "err", err)
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleFilesDigest(w http.ResponseWriter, r *http.Request) {
	dir, err := s.treeDir(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.files.RLock()
	defer s.files.RUnlock()
	d, err := treeDigest(r.Context(), dir)
	if err != nil {
		s.log.Warn("digest files failed", "err", err)
		writeError(w, err)
		return
	}
	d.Tree = r.PathValue("tree")
	writeJSON(w, http.StatusOK, d)
}

// treeDigest hashes the listing of the tree under root as GET /files
// would archive it (api.TreeDigest): metadata only, no file is read.
func treeDigest(ctx context.Context, root string) (api.TreeDigest, error) {
	h := sha256.New()
	var d api.TreeDigest
	err := walkTree(ctx, root, func(rel string, info fs.FileInfo, link string) error {
		var ino, ctime int64
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			ino, ctime = int64(st.Ino), st.Ctim.Nano()
		}
		fmt.Fprintf(h, "%q %o %d %d %d %d %q\n", rel, uint32(info.Mode()), info.Size(), info.ModTime().UnixNano(), ctime, ino, link)
		d.Entries++
		if info.Mode().IsRegular() {
			d.Bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("digest %s: %w", root, err)
	}
	d.Digest = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

// walkTree calls fn for every entry GET /files archives under root, in
// archive order: directories, regular files and symlinks (link is the
// target), without the agent's scratch directories.
func walkTree(ctx context.Context, root string, fn func(rel string, info fs.FileInfo, link string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if !strings.Contains(rel, "/") && strings.HasPrefix(rel, agentDirPrefix) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // sockets, devices, FIFOs
		}
		return fn(rel, info, link)
	})
}

// writeTar writes the tree under root as a tar stream: directories, regular
// files (hard links as links), symlinks. Sockets, devices and FIFOs are left
// out, as are the agent's scratch directories.
func writeTar(ctx context.Context, w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]string{}
	err := walkTree(ctx, root, func(rel string, info fs.FileInfo, link string) error {
		path := filepath.Join(root, rel)
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("header for %s: %w", rel, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uname, hdr.Gname = "", ""
		if info.IsDir() {
			hdr.Name += "/"
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() && st.Nlink > 1 {
			id := fileID{uint64(st.Dev), st.Ino}
			if first, ok := seen[id]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[id] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write header %s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			return copyFile(tw, path, hdr.Size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}

func copyFile(w io.Writer, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, size); err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	return nil
}

// replaceDir replaces the contents of dir with the archive on r. The archive
// is extracted into a staging directory inside dir (same filesystem, so the
// swap is renames), validated in full, and only then swapped in while
// holding swap: a refused archive leaves dir as it was.
func replaceDir(dir string, r io.Reader, maxBytes int64, swap sync.Locker) error {
	staging, err := os.MkdirTemp(dir, agentDirPrefix+"staging-")
	if err != nil {
		return fmt.Errorf("create staging dir: %w", err)
	}
	defer os.RemoveAll(staging)
	x := &extractor{root: staging, final: dir, budget: maxBytes, checked: map[string]bool{"": true}}
	if err := x.extract(r); err != nil {
		return err
	}
	if err := checkLinks(staging, dir); err != nil {
		return err
	}
	swap.Lock()
	defer swap.Unlock()
	return swapContents(dir, staging)
}

// swapContents moves dir's entries into a trash directory, moves staging's
// entries into dir, then deletes the trash. On a failure it moves back what
// it can.
func swapContents(dir, staging string) error {
	trash, err := os.MkdirTemp(dir, agentDirPrefix+"trash-")
	if err != nil {
		return fmt.Errorf("create trash dir: %w", err)
	}
	defer os.RemoveAll(trash)
	old, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var moved []string
	rollback := func() {
		for _, n := range moved {
			_ = os.Rename(filepath.Join(trash, n), filepath.Join(dir, n))
		}
	}
	for _, e := range old {
		n := e.Name()
		if strings.HasPrefix(n, agentDirPrefix) {
			continue
		}
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(trash, n)); err != nil {
			rollback()
			return fmt.Errorf("move out %s: %w", n, err)
		}
		moved = append(moved, n)
	}
	staged, err := os.ReadDir(staging)
	if err != nil {
		rollback()
		return fmt.Errorf("read staging dir: %w", err)
	}
	for i, e := range staged {
		n := e.Name()
		if err := os.Rename(filepath.Join(staging, n), filepath.Join(dir, n)); err != nil {
			for _, back := range staged[:i] {
				_ = os.Rename(filepath.Join(dir, back.Name()), filepath.Join(staging, back.Name()))
			}
			rollback()
			return fmt.Errorf("move in %s: %w", n, err)
		}
	}
	return nil
}
