package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The wire form of a Record: how a batch crosses a pipe to a writer process
// (store/sqlite's writer process). It is a private format between two
// copies of the same binary, so it has no version: varints for numbers,
// length-prefixed strings and bytes, one flags byte for the booleans and a
// nil body.

// record flags
const (
	wireStream = 1 << iota
	wireEstimated
	wirePriced
	wireReqBody  // RequestBody is not nil
	wireRespBody // ResponseBody is not nil
)

// AppendWire appends r's wire form to dst.
func AppendWire(dst []byte, r *Record) []byte {
	for _, s := range [...]string{r.ID, r.KeyID, r.KeyName, r.User, r.Endpoint, r.Model, r.ModelUsed, r.Upstream,
		string(r.Outcome), r.ClientIP, r.Error} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, v := range [...]int64{r.Time.UnixNano(), int64(r.Status), int64(r.Attempts), r.PromptTokens,
		r.CompletionTokens, r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens, r.TotalTokens, r.CostNanoUSD,
		int64(r.Duration), int64(r.TTFB)} {
		dst = binary.AppendVarint(dst, v)
	}
	var flags byte
	for bit, on := range [...]bool{r.Stream, r.Estimated, r.Priced, r.RequestBody != nil, r.ResponseBody != nil} {
		if on {
			flags |= 1 << bit
		}
	}
	dst = append(dst, flags)
	for _, b := range [...][]byte{r.RequestBody, r.ResponseBody} {
		if b != nil {
			dst = binary.AppendUvarint(dst, uint64(len(b)))
			dst = append(dst, b...)
		}
	}
	return dst
}

var errWireShort = errors.New("ledger: wire record truncated")

// wireReader decodes records from one batch. Strings are slices of src (one
// conversion per batch, not eleven allocations per record); bodies are
// copied.
type wireReader struct {
	src string
	off int
}

func (w *wireReader) uvarint() (uint64, error) {
	v, n := uvarintString(w.src[w.off:])
	if n <= 0 {
		return 0, errWireShort
	}
	w.off += n
	return v, nil
}

func (w *wireReader) varint() (int64, error) {
	u, err := w.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, err
}

func (w *wireReader) str() (string, error) {
	n, err := w.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(len(w.src)-w.off) {
		return "", errWireShort
	}
	s := w.src[w.off : w.off+int(n)]
	w.off += int(n)
	return s, nil
}

// uvarintString is binary.Uvarint over a string, so decoding never copies.
func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1) // overflow
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func (w *wireReader) record(r *Record) error {
	var err error
	strs := [...]*string{&r.ID, &r.KeyID, &r.KeyName, &r.User, &r.Endpoint, &r.Model, &r.ModelUsed, &r.Upstream,
		(*string)(&r.Outcome), &r.ClientIP, &r.Error}
	for _, p := range strs {
		if *p, err = w.str(); err != nil {
			return err
		}
	}
	var v [12]int64
	for i := range v {
		if v[i], err = w.varint(); err != nil {
			return err
		}
	}
	r.Time = time.Unix(0, v[0]).UTC()
	r.Status, r.Attempts = int(v[1]), int(v[2])
	r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.CacheWriteTokens = v[3], v[4], v[5], v[6]
	r.ReasoningTokens, r.TotalTokens, r.CostNanoUSD = v[7], v[8], v[9]
	r.Duration, r.TTFB = time.Duration(v[10]), time.Duration(v[11])
	if w.off >= len(w.src) {
		return errWireShort
	}
	flags := w.src[w.off]
	w.off++
	r.Stream, r.Estimated, r.Priced = flags&wireStream != 0, flags&wireEstimated != 0, flags&wirePriced != 0
	for _, b := range [...]struct {
		bit byte
		dst *[]byte
	}{{wireReqBody, &r.RequestBody}, {wireRespBody, &r.ResponseBody}} {
		*b.dst = nil
		if flags&b.bit == 0 {
			continue
		}
		s, err := w.str()
		if err != nil {
			return err
		}
		*b.dst = []byte(s)
	}
	return nil
}

// AppendWireBatch appends a batch: its record count, then the records.
func AppendWireBatch(dst []byte, recs []Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	for i := range recs {
		dst = AppendWire(dst, &recs[i])
	}
	return dst
}

// ReadWireBatch decodes a batch written by AppendWireBatch, appending the
// records to dst. The strings of the records share one copy of src.
func ReadWireBatch(dst []Record, src []byte) ([]Record, error) {
	w := wireReader{src: string(src)}
	n, err := w.uvarint()
	if err != nil {
		return dst, err
	}
	// Every record takes at least 24 bytes (11 string lengths, 12 numbers,
	// the flags), so a count larger than that allows is a corrupt batch, not
	// a reason to allocate.
	if n > uint64(len(src))/24 {
		return dst, fmt.Errorf("ledger: wire batch of %d records in %d bytes", n, len(src))
	}
	for range n {
		dst = append(dst, Record{})
		if err := w.record(&dst[len(dst)-1]); err != nil {
			return dst[:len(dst)-1], err
		}
	}
	if w.off != len(w.src) {
		return dst, fmt.Errorf("ledger: %d bytes after the wire batch", len(w.src)-w.off)
	}
	return dst, nil
}
