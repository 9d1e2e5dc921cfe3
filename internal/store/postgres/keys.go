package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
)

const keyCols = `id, name, prefix, hash, models, rpm, tpm, max_parallel, budget_nano, budget_period,
	expires_at, revoked_at, created_at, updated_at`

// nullTime maps the zero time to SQL NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateKey inserts a new key. CreatedAt/UpdatedAt default to now.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = k.CreatedAt
	}
	_, err := s.pool.exec(ctx, `INSERT INTO keys (`+keyCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
		k.ID, k.Name, k.Prefix, k.Hash, nonNil(k.Models), k.RPM, k.TPM, k.MaxParallel, k.BudgetNano, k.BudgetPeriod,
		nullTime(k.ExpiresAt), nullTime(k.RevokedAt), k.CreatedAt, k.UpdatedAt)
	if err != nil {
		return fmt.Errorf("postgres: create key %s: %w", k.ID, err)
	}
	return nil
}

// UpdateKey replaces the mutable fields of k.ID and bumps UpdatedAt (to now
// unless k.UpdatedAt is later), strictly increasing so pollers see the change.
func (s *Store) UpdateKey(ctx context.Context, k store.Key) error {
	upd := time.Now()
	if k.UpdatedAt.After(upd) {
		upd = k.UpdatedAt
	}
	tag, err := s.pool.exec(ctx, `UPDATE keys SET name = $2, prefix = $3, hash = $4, models = $5, rpm = $6, tpm = $7,
		max_parallel = $8, budget_nano = $9, budget_period = $10, expires_at = $11, revoked_at = $12,
		updated_at = GREATEST($13, updated_at + interval '1 microsecond') WHERE id = $1`,
		k.ID, k.Name, k.Prefix, k.Hash, nonNil(k.Models), k.RPM, k.TPM, k.MaxParallel, k.BudgetNano, k.BudgetPeriod,
		nullTime(k.ExpiresAt), nullTime(k.RevokedAt), upd)
	if err != nil {
		return fmt.Errorf("postgres: update key %s: %w", k.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

func scanKey(row pgx.Row) (store.Key, error) {
	var k store.Key
	var exp, rev *time.Time
	if err := row.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.Models, &k.RPM, &k.TPM, &k.MaxParallel, &k.BudgetNano,
		&k.BudgetPeriod, &exp, &rev, &k.CreatedAt, &k.UpdatedAt); err != nil {
		return k, err
	}
	if len(k.Models) == 0 {
		k.Models = nil
	}
	if exp != nil {
		k.ExpiresAt = exp.UTC()
	}
	if rev != nil {
		k.RevokedAt = rev.UTC()
	}
	k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
	return k, nil
}

// GetKey returns one key by id, or store.ErrNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	var k store.Key
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		var err error
		k, err = scanKey(c.QueryRow(ctx, `SELECT `+keyCols+` FROM keys WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Key{}, store.ErrNotFound
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("postgres: get key: %w", err)
	}
	return k, nil
}

// ListKeys returns all keys, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	var out []store.Key
	err := s.pool.query(ctx, `SELECT `+keyCols+` FROM keys ORDER BY created_at, id`, nil, func(rows pgx.Rows) error {
		k, err := scanKey(rows)
		out = append(out, k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	return out, nil
}

// KeySpend sums the cost of keyID over the hours from since's hour on
// (whole days from usage_daily, the first partial day from usage_hourly).
func (s *Store) KeySpend(ctx context.Context, keyID string, since time.Time) (int64, error) {
	var total int64
	for _, sp := range store.SplitRange(since, time.Time{}) {
		var n int64
		err := s.pool.queryRow(ctx, `SELECT COALESCE(SUM(cost_nano), 0)::bigint FROM `+sp.Table+
			` WHERE key_id = $1 AND `+sp.Col+` >= $2 AND `+sp.Col+` < $3`, []any{keyID, sp.From, sp.To}, &n)
		if err != nil {
			return 0, fmt.Errorf("postgres: key spend: %w", err)
		}
		total += n
	}
	return total, nil
}

// KeysLastUsed maps key id to its newest ledger row time.
func (s *Store) KeysLastUsed(ctx context.Context) (map[string]time.Time, error) {
	out := make(map[string]time.Time)
	err := s.pool.query(ctx, `SELECT key_id, time FROM key_last_used`, nil, func(rows pgx.Rows) error {
		var id string
		var t time.Time
		err := rows.Scan(&id, &t)
		out[id] = t.UTC()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: keys last used: %w", err)
	}
	return out, nil
}

// AppendMessages appends msgs and trims the conversation to its newest keep
// messages, in one transaction. The conversations row lock serializes
// concurrent appenders of the same conversation.
func (s *Store) AppendMessages(ctx context.Context, c store.ConversationKey, msgs []store.Message, keep int) error {
	if len(msgs) == 0 {
		return nil
	}
	err := s.pool.tx(ctx, func(tx pgx.Tx) error {
		var last int64
		if err := tx.QueryRow(ctx, `INSERT INTO conversations (key_id, end_user, conversation, next_seq) VALUES ($1, $2, $3, $4)
			ON CONFLICT (key_id, end_user, conversation) DO UPDATE SET next_seq = conversations.next_seq + excluded.next_seq
			RETURNING next_seq`, c.KeyID, c.User, c.Conversation, len(msgs)).Scan(&last); err != nil {
			return err
		}
		first := last - int64(len(msgs)) + 1
		rows := make([][]any, len(msgs))
		for i, m := range msgs {
			t := m.Time
			if t.IsZero() {
				t = time.Now()
			}
			rows[i] = []any{c.KeyID, c.User, c.Conversation, first + int64(i), m.Role, m.Content, t}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"conversation_messages"},
			[]string{"key_id", "end_user", "conversation", "seq", "role", "content", "time"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		if keep > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM conversation_messages
				WHERE key_id = $1 AND end_user = $2 AND conversation = $3 AND seq <= $4`,
				c.KeyID, c.User, c.Conversation, last-int64(keep)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: append messages: %w", err)
	}
	return nil
}

// History returns the newest limit messages, oldest first.
func (s *Store) History(ctx context.Context, c store.ConversationKey, limit int) ([]store.Message, error) {
	var lim any // NULL: LIMIT ALL
	if limit > 0 {
		lim = limit
	}
	var out []store.Message
	err := s.pool.query(ctx, `SELECT role, content, time FROM conversation_messages
		WHERE key_id = $1 AND end_user = $2 AND conversation = $3 ORDER BY seq DESC LIMIT $4`,
		[]any{c.KeyID, c.User, c.Conversation, lim}, func(rows pgx.Rows) error {
			var m store.Message
			err := rows.Scan(&m.Role, &m.Content, &m.Time)
			m.Time = m.Time.UTC()
			out = append(out, m)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ClearHistory deletes a conversation and reports how many messages went.
func (s *Store) ClearHistory(ctx context.Context, c store.ConversationKey) (int, error) {
	var n int64
	err := s.pool.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM conversation_messages WHERE key_id = $1 AND end_user = $2 AND conversation = $3`,
			c.KeyID, c.User, c.Conversation)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, `DELETE FROM conversations WHERE key_id = $1 AND end_user = $2 AND conversation = $3`,
			c.KeyID, c.User, c.Conversation)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: clear history: %w", err)
	}
	return int(n), nil
}
