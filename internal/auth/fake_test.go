package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// fakeStore is an in-memory KeyStore for tests. fail makes every call fail.
type fakeStore struct {
	mu       sync.Mutex
	keys     []store.Key
	spend    map[string]int64
	lastUsed map[string]time.Time
	since    map[string]time.Time // last KeySpend since per key
	fail     error
	lists    int
}

func newFakeStore() *fakeStore {
	return &fakeStore{spend: map[string]int64{}, lastUsed: map[string]time.Time{}, since: map[string]time.Time{}}
}

func (f *fakeStore) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeStore) CreateKey(_ context.Context, k store.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for _, o := range f.keys {
		if o.ID == k.ID || o.Hash == k.Hash {
			return errors.New("duplicate key")
		}
	}
	k.Models = slices.Clone(k.Models)
	f.keys = append(f.keys, k)
	return nil
}

func (f *fakeStore) UpdateKey(_ context.Context, k store.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for i := range f.keys {
		if f.keys[i].ID == k.ID {
			k.CreatedAt = f.keys[i].CreatedAt
			k.Models = slices.Clone(k.Models)
			f.keys[i] = k
			return nil
		}
	}
	return fmt.Errorf("update %s: %w", k.ID, store.ErrNotFound)
}

func (f *fakeStore) GetKey(_ context.Context, id string) (store.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return store.Key{}, f.fail
	}
	for _, k := range f.keys {
		if k.ID == id {
			return k, nil
		}
	}
	return store.Key{}, store.ErrNotFound
}

func (f *fakeStore) ListKeys(context.Context) ([]store.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.fail != nil {
		return nil, f.fail
	}
	return slices.Clone(f.keys), nil
}

func (f *fakeStore) KeySpend(_ context.Context, keyID string, since time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	f.since[keyID] = since
	return f.spend[keyID], nil
}

func (f *fakeStore) KeysLastUsed(context.Context) (map[string]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	return f.lastUsed, nil
}

var _ KeyStore = (*fakeStore)(nil)
