package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// versionMark is replaced in index.html by the asset version, so that every
// asset URL changes whenever any asset does and can be cached for a year.
const versionMark = "__V__"

// asset is one embedded file, ready to serve.
type asset struct {
	body, gz []byte // gz is nil when compression does not pay
	ctype    string
	etag     string
}

// assets holds the embedded files keyed by their path under static/, and
// the version: a hash of all of them. Relative ES-module imports stay
// within one version directory, so hashing the whole set (rather than each
// file) keeps the JavaScript free of build-time rewriting.
type assets struct {
	files   map[string]*asset
	version string
	index   *asset
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string]*asset{}}
	all := sha256.New()
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		fmt.Fprintf(all, "%s\x00%d\x00", name, len(b))
		all.Write(b)
		a.files[name] = newAsset(name, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: read embedded assets: %w", err)
	}
	a.version = hex.EncodeToString(all.Sum(nil))[:12]
	idx, ok := a.files["index.html"]
	if !ok {
		return nil, fmt.Errorf("ui: index.html is not embedded")
	}
	delete(a.files, "index.html")
	a.index = newAsset("index.html", bytes.ReplaceAll(idx.body, []byte(versionMark), []byte(a.version)))
	return a, nil
}

func newAsset(name string, b []byte) *asset {
	sum := sha256.Sum256(b)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	as := &asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	if compressible(ct) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		if buf.Len() < len(b) {
			as.gz = buf.Bytes()
		}
	}
	return as
}

func compressible(ct string) bool {
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "javascript") || strings.Contains(ct, "json") ||
		strings.Contains(ct, "svg")
}

// GzipSize reports the compressed size of every embedded asset together
// (what a first visit downloads), for the size budget test.
func GzipSize() (int, error) {
	a, err := loadAssets()
	if err != nil {
		return 0, err
	}
	n := a.index.size(true)
	for _, f := range a.files {
		n += f.size(true)
	}
	return n, nil
}

func (as *asset) size(gz bool) int {
	if gz && as.gz != nil {
		return len(as.gz)
	}
	return len(as.body)
}

// serve writes as with its validators; cache is the Cache-Control value.
func (as *asset) serve(w http.ResponseWriter, r *http.Request, cache string) {
	h := w.Header()
	h.Set("Cache-Control", cache)
	h.Set("ETag", as.etag)
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, as.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", as.ctype)
	body := as.body
	if as.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = as.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsGzip reports whether the client listed gzip without q=0.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			return strings.ReplaceAll(params, " ", "") != "q=0"
		}
	}
	return false
}
