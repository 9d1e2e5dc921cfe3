package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

const keyCols = `id, name, prefix, hash, models, rpm, tpm, max_parallel, budget_nano, budget_period,
	expires_us, revoked_us, created_us, updated_us`

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// CreateKey inserts a new key. CreatedAt/UpdatedAt default to now.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	now := time.Now()
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = k.CreatedAt
	}
	models, err := json.Marshal(nonNil(k.Models))
	if err != nil {
		return fmt.Errorf("sqlite: create key: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO keys (`+keyCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		k.ID, k.Name, k.Prefix, k.Hash, string(models), k.RPM, k.TPM, k.MaxParallel, k.BudgetNano, k.BudgetPeriod,
		micros(k.ExpiresAt), micros(k.RevokedAt), micros(k.CreatedAt), micros(k.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	}
	return nil
}

// UpdateKey replaces the mutable fields of k.ID and bumps UpdatedAt (to now
// unless k.UpdatedAt is later).
func (s *Store) UpdateKey(ctx context.Context, k store.Key) error {
	models, err := json.Marshal(nonNil(k.Models))
	if err != nil {
		return fmt.Errorf("sqlite: update key: %w", err)
	}
	upd := time.Now()
	if k.UpdatedAt.After(upd) {
		upd = k.UpdatedAt
	}
	res, err := s.w.ExecContext(ctx, `UPDATE keys SET name = ?, prefix = ?, hash = ?, models = ?, rpm = ?, tpm = ?,
		max_parallel = ?, budget_nano = ?, budget_period = ?, expires_us = ?, revoked_us = ?,
		updated_us = max(?, updated_us + 1) WHERE id = ?`,
		k.Name, k.Prefix, k.Hash, string(models), k.RPM, k.TPM, k.MaxParallel, k.BudgetNano, k.BudgetPeriod,
		micros(k.ExpiresAt), micros(k.RevokedAt), micros(upd), k.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update key %s: %w", k.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanKey(sc scanner) (store.Key, error) {
	var k store.Key
	var models string
	var exp, rev, cr, up int64
	if err := sc.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &models, &k.RPM, &k.TPM, &k.MaxParallel, &k.BudgetNano,
		&k.BudgetPeriod, &exp, &rev, &cr, &up); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return k, fmt.Errorf("models of key %s: %w", k.ID, err)
	}
	if len(k.Models) == 0 {
		k.Models = nil
	}
	k.ExpiresAt, k.RevokedAt, k.CreatedAt, k.UpdatedAt = fromMicros(exp), fromMicros(rev), fromMicros(cr), fromMicros(up)
	return k, nil
}

// GetKey returns one key by id, or store.ErrNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyCols+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, store.ErrNotFound
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("sqlite: get key: %w", err)
	}
	return k, nil
}

// ListKeys returns all keys, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyCols+` FROM keys ORDER BY created_us, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return out, nil
}

// KeySpend sums the cost of keyID over the hours from since's hour on
// (whole days from usage_daily, the first partial day from usage_hourly).
func (s *Store) KeySpend(ctx context.Context, keyID string, since time.Time) (int64, error) {
	var total int64
	for _, sp := range store.SplitRange(since, time.Time{}) {
		var n int64
		err := s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_nano), 0) FROM `+sp.Table+
			` WHERE key_id = ? AND `+sp.Col+` >= ? AND `+sp.Col+` < ?`, keyID, sp.From, sp.To).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("sqlite: key spend: %w", err)
		}
		total += n
	}
	return total, nil
}

// KeysLastUsed maps key id to its newest ledger row time.
func (s *Store) KeysLastUsed(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key_id, time_us FROM key_last_used`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys last used: %w", err)
	}
	defer rows.Close()
	out := make(map[string]time.Time)
	for rows.Next() {
		var id string
		var us int64
		if err := rows.Scan(&id, &us); err != nil {
			return nil, fmt.Errorf("sqlite: keys last used: %w", err)
		}
		out[id] = fromMicros(us)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: keys last used: %w", err)
	}
	return out, nil
}

// AppendMessages appends msgs and trims the conversation to its newest keep
// messages, in one transaction.
func (s *Store) AppendMessages(ctx context.Context, c store.ConversationKey, msgs []store.Message, keep int) (err error) {
	if len(msgs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: append messages: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var last int64
	err = tx.QueryRowContext(ctx, `INSERT INTO conversations (key_id, end_user, conversation, next_seq) VALUES (?, ?, ?, ?)
		ON CONFLICT(key_id, end_user, conversation) DO UPDATE SET next_seq = next_seq + excluded.next_seq
		RETURNING next_seq`, c.KeyID, c.User, c.Conversation, len(msgs)).Scan(&last)
	if err != nil {
		return fmt.Errorf("sqlite: append messages: %w", err)
	}
	first := last - int64(len(msgs)) + 1
	for i, m := range msgs {
		t := m.Time
		if t.IsZero() {
			t = time.Now()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_messages
			(key_id, end_user, conversation, seq, role, content, time_us) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.KeyID, c.User, c.Conversation, first+int64(i), m.Role, m.Content, t.UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: append messages: %w", err)
		}
	}
	if keep > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM conversation_messages
			WHERE key_id = ? AND end_user = ? AND conversation = ? AND seq <= ?`,
			c.KeyID, c.User, c.Conversation, last-int64(keep)); err != nil {
			return fmt.Errorf("sqlite: trim messages: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: append messages: commit: %w", err)
	}
	return nil
}

// History returns the newest limit messages, oldest first.
func (s *Store) History(ctx context.Context, c store.ConversationKey, limit int) ([]store.Message, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT role, content, time_us FROM conversation_messages
		WHERE key_id = ? AND end_user = ? AND conversation = ? ORDER BY seq DESC LIMIT ?`,
		c.KeyID, c.User, c.Conversation, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	defer rows.Close()
	var out []store.Message
	for rows.Next() {
		var m store.Message
		var us int64
		if err := rows.Scan(&m.Role, &m.Content, &us); err != nil {
			return nil, fmt.Errorf("sqlite: history: %w", err)
		}
		m.Time = fromMicros(us)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ClearHistory deletes a conversation and reports how many messages went.
func (s *Store) ClearHistory(ctx context.Context, c store.ConversationKey) (n int, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear history: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, `DELETE FROM conversation_messages WHERE key_id = ? AND end_user = ? AND conversation = ?`,
		c.KeyID, c.User, c.Conversation)
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear history: %w", err)
	}
	cnt, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM conversations WHERE key_id = ? AND end_user = ? AND conversation = ?`,
		c.KeyID, c.User, c.Conversation); err != nil {
		return 0, fmt.Errorf("sqlite: clear history: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: clear history: %w", err)
	}
	return int(cnt), nil
}
