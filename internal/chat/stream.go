package chat

// maxReplyBytes bounds the assembled reply kept for the history.
const maxReplyBytes = 8 << 20
