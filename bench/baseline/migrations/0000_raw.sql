CREATE TABLE raw_events (message_id TEXT PRIMARY KEY, body TEXT NOT NULL);
