package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/internal/httpfield"
)

// excludedHeaders are written by writeRequest itself, as Request.Write does.
var excludedHeaders = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true,
}

// writeRequest writes req into bw. The gateway's requests (a known length,
// no trailers) are written here, so that a body that can write itself
// (io.WriterTo: the proxy's pooled bodies) reaches the socket in one Write,
// past the buffer: Request.Write copies every body through a fresh 32 KiB
// buffer. Anything else is left to Request.Write.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if req.ContentLength < 0 || (req.ContentLength == 0 && req.Body != nil && req.Body != http.NoBody) ||
		len(req.TransferEncoding) > 0 || req.Trailer != nil || req.Close {
		return req.Write(bw)
	}
	if req.Body != nil {
		defer req.Body.Close()
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if strings.ContainsAny(host, " \r\n\t") {
		return fmt.Errorf("h1: invalid host %q", host)
	}
	for k := range req.Header {
		if !httpfield.ValidName(k) {
			return errors.New("h1: invalid header field name")
		}
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := "Go-http-client/1.1" // what net/http sends when none is set
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		if strings.ContainsAny(ua, "\r\n") {
			ua = strings.NewReplacer("\r", " ", "\n", " ").Replace(ua)
		}
		bw.WriteString(ua)
		bw.WriteString("\r\n")
	}
	if req.ContentLength > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	if err := req.Header.WriteSubset(bw, excludedHeaders); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if req.ContentLength == 0 {
		return nil
	}
	n, err := io.Copy(bw, req.Body)
	if err == nil && n != req.ContentLength {
		err = fmt.Errorf("h1: body of %d bytes, Content-Length %d", n, req.ContentLength)
	}
	return err
}
