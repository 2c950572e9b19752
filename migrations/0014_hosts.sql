-- 0014: what several hosts share: the keyring and the login throttling.
--
-- One row: the keyring of wrapping-key versions, sealed as a whole under the
-- key-encryption key (core/keyring.c has the layout), which never comes here.
-- Each host holds only the key-encryption key; a rotation or retirement on one
-- host is seen by the others at their next read. Writers change the row by
-- compare and swap on generation. An installation that kept the keyring in a
-- file imports it here once, at the first start of this version.
--
-- Trade-off, told in the README: a copy of the database (a backup, a standby,
-- an old dump) now holds the keyring as it was when copied, so it opens with
-- the key-encryption key alone; vault.keyring_in = file keeps the keyring out
-- of the database for a single host.

CREATE TABLE keyring (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    sealed      bytea NOT NULL CHECK (length(sealed) BETWEEN 84 AND 65536),
    generation  bigint NOT NULL CHECK (generation > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON keyring FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON keyring TO quire_app;

-- Failed logins, counted per account and per address for every web server at
-- once (several `quire web` processes behind one address share one count).
-- key is a keyed hash of "user:NAME" or "addr:ADDRESS"; nothing here names
-- either. Rows idle for a day are removed by the web servers.
CREATE TABLE login_throttle (
    key         text PRIMARY KEY CHECK (length(key) = 64),
    failures    integer NOT NULL CHECK (failures > 0),
    until_at    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON login_throttle FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO quire_app;
