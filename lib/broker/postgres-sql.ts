// Where the PostgreSQL broker keeps things, and every statement it runs. S is the schema,
// P the prefix (both plain identifiers):
//
//   S.Pmeta           one row: the epoch every topic starts in (a new set of tables, a new epoch)
//   S.Ptopics         topic -> epoch, offset (last assigned), ttl (history ttl of the last publication)
//   S.Ppublications   history: (topic, offset) -> epoch, data, exc (except JSON or ''), at (ms)
//   S.Ppresence       (topic, connection id) -> node, data
//   S.Pnodes          node id -> ms at which it counts as dead unless it beats again
//   S.Pidempotency    scope digest -> token (null once settled), answer, expires (ms)
//   S.Ppayloads       notifications too large for NOTIFY, by id, kept a few minutes
//
// One NOTIFY channel carries everything (a LISTEN channel is an identifier of at most 63
// bytes, too short for topic names): `c<json>` a command, `t<len>:<topic><message>` a
// topic's publication or presence event (the message as on Redis, redis-messages.ts,
// <len> the topic's length in UTF-16 units), `p<id>` a pointer to a payloads row
// holding such a `t…` frame, when it would not fit NOTIFY's 8000 bytes.
//
// Offsets: the publish statement takes the topic's row lock (the upsert on Ptopics) and
// holds it until its transaction ends. A second transaction publishing to the topic
// waits there, so offsets are assigned in commit order and a rollback gives its offset
// back (the increment is rolled back with it): gapless per topic. NOTIFY is part of the
// transaction too: sent at COMMIT, by the server, in commit order, never on ROLLBACK.

/** Identifiers are checked when the options are (postgres-options.ts): plain, so quoting is enough. */
export class PostgresNames {
  readonly meta: string
  readonly topics: string
  readonly publications: string
  readonly presence: string
  readonly nodes: string
  readonly idempotency: string
  readonly payloads: string
  /** The NOTIFY channel, unquoted (for pg_notify) and quoted (for LISTEN). */
  readonly channel: string
  readonly listen: string
  /** The advisory lock key that serialises creating the tables. */
  readonly lock: string

  constructor (schema: string, prefix: string) {
    const table = (name: string) => `"${schema}"."${prefix}${name}"`
    this.meta = table('meta')
    this.topics = table('topics')
    this.publications = table('publications')
    this.presence = table('presence')
    this.nodes = table('nodes')
    this.idempotency = table('idempotency')
    this.payloads = table('payloads')
    this.channel = `${schema}.${prefix}events`.slice(0, 63)
    this.listen = `"${this.channel}"`
    this.lock = `fastify-realtime:${schema}.${prefix}`
  }
}

/** The SQL that creates the tables (idempotent); run by the broker on first use unless `createTables: false`. */
export function migrationSql (n: PostgresNames, schema: string): string {
  return `CREATE SCHEMA IF NOT EXISTS "${schema}";
CREATE TABLE IF NOT EXISTS ${n.meta} (id int PRIMARY KEY CHECK (id = 1), epoch text NOT NULL);
INSERT INTO ${n.meta} (id, epoch) VALUES (1, md5(random()::text || clock_timestamp()::text)) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ${n.topics} (topic text PRIMARY KEY, epoch text NOT NULL, "offset" bigint NOT NULL, ttl bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ${n.publications} (topic text NOT NULL, "offset" bigint NOT NULL, epoch text NOT NULL, data text NOT NULL, exc text NOT NULL, at bigint NOT NULL, PRIMARY KEY (topic, "offset"));
CREATE TABLE IF NOT EXISTS ${n.presence} (topic text NOT NULL, connection_id text NOT NULL, node text NOT NULL, data text NOT NULL, PRIMARY KEY (topic, connection_id));
CREATE INDEX IF NOT EXISTS "${n.presence.slice(n.presence.indexOf('.') + 2, -1)}_node" ON ${n.presence} (node);
CREATE TABLE IF NOT EXISTS ${n.nodes} (id text PRIMARY KEY, expires bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ${n.idempotency} (id text PRIMARY KEY, token text, answer text NOT NULL, expires bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ${n.payloads} (id text PRIMARY KEY, body text NOT NULL, at bigint NOT NULL);`
}

/** Milliseconds since the epoch: the broker's test clock when it has one (a parameter), else the database's, one clock for every node. */
const clock = (param: string) => `coalesce(${param}::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)`

/** A topic frame: `t<len>:<topic>` then the message. */
const frame = (topic: string, len: string, message: string) => `'t' || ${len}::text || ':' || ${topic} || ${message}`

const NL = 'E\'\\n\''

export interface Statements {
  publish: string
  position: string
  read: string
  join: string
  leave: string
  members: string
  beat: string
  sweep: string
  forget: string
  notify: string
  payload: string
  dropPayloads: string
  claim: string
  held: string
  settle: string
  drop: string
}

/**
 * Publish: $1 topic, $2 data, $3 except JSON or '', $4 ephemeral, $5 history size,
 * $6 history ttl, $7 test clock or null, $8 origin tag, $9 payload id (used when too
 * large for NOTIFY), $10 must run inside a transaction block, $11 NOTIFY limit,
 * $12 the topic's length. Returns the position (ephemeral: the topic's, unmoved), or
 * no row when $10 is set and the statement runs outside a transaction block: then it
 * changed nothing.
 */
export function statements (n: PostgresNames): Statements {
  const publish = `WITH clock AS (SELECT ${clock('$7')} AS now),
guard AS (SELECT 1 AS ok WHERE NOT $10::boolean OR transaction_timestamp() < statement_timestamp()),
t AS (
  INSERT INTO ${n.topics} AS cur (topic, epoch, "offset", ttl)
  SELECT $1, m.epoch, 1, $6::bigint FROM ${n.meta} m, guard WHERE NOT $4::boolean
  ON CONFLICT (topic) DO UPDATE SET "offset" = cur."offset" + 1, ttl = EXCLUDED.ttl
  RETURNING epoch, "offset"
),
e AS (
  SELECT coalesce((SELECT epoch FROM ${n.topics} WHERE topic = $1), (SELECT epoch FROM ${n.meta})) AS epoch,
    coalesce((SELECT "offset" FROM ${n.topics} WHERE topic = $1), 0) AS "offset"
  FROM guard WHERE $4::boolean
),
pos AS (SELECT epoch, "offset", false AS eph FROM t UNION ALL SELECT epoch, "offset", true FROM e),
ins AS (
  INSERT INTO ${n.publications} (topic, "offset", epoch, data, exc, at)
  SELECT $1, t."offset", t.epoch, $2, $3, clock.now FROM t, clock WHERE $5::int > 0
),
trimmed AS (
  DELETE FROM ${n.publications} p USING t, clock
  WHERE p.topic = $1 AND (p."offset" <= t."offset" - $5::int OR ($6::bigint > 0 AND p.at <= clock.now - $6::bigint))
),
msg AS (
  SELECT epoch, "offset", ${frame('$1', '$12', `CASE WHEN eph THEN 'e' || ${NL} ELSE 'm' || ${NL} || "offset"::text || ${NL} END || epoch || ${NL} || $8 || ${NL} || $3 || ${NL} || $2`)} AS body
  FROM pos
),
big AS (
  INSERT INTO ${n.payloads} (id, body, at) SELECT $9, msg.body, clock.now FROM msg, clock WHERE octet_length(msg.body) > $11::int
),
sent AS (SELECT pg_notify('${n.channel}', CASE WHEN octet_length(body) > $11::int THEN 'p' || $9 ELSE body END) AS done FROM msg)
SELECT msg.epoch, msg."offset" FROM msg, sent`

  const position = `SELECT coalesce(t.epoch, m.epoch) AS epoch, coalesce(t."offset", 0) AS "offset"
FROM ${n.meta} m LEFT JOIN ${n.topics} t ON t.topic = $1`

  // $1 topic, $2 offset after which to read (in `since`'s epoch; from the start in
  // another), $3 the epoch of `since` ('' none), $4 how many (the newest), $5 test clock.
  // One statement: one snapshot, so the position and the rows agree.
  const read = `WITH clock AS (SELECT ${clock('$5')} AS now),
pos AS (
  SELECT coalesce(t.epoch, m.epoch) AS epoch, coalesce(t."offset", 0) AS "offset", coalesce(t.ttl, 0) AS ttl
  FROM ${n.meta} m LEFT JOIN ${n.topics} t ON t.topic = $1
)
SELECT pos.epoch, pos."offset", r."offset" AS o, r.data, r.exc
FROM pos LEFT JOIN LATERAL (
  SELECT q."offset", q.data, q.exc FROM ${n.publications} q, clock
  WHERE q.topic = $1 AND q.epoch = pos.epoch AND q."offset" > CASE WHEN pos.epoch = $3 THEN $2::bigint ELSE 0 END
    AND (pos.ttl <= 0 OR q.at > clock.now - pos.ttl)
  ORDER BY q."offset" DESC LIMIT $4::bigint
) r ON true
ORDER BY r."offset"`

  // $1 topic, $2 connection id, $3 node, $4 data, $5 topic length, $6 node expiry (ms ahead), $7 test clock.
  const join = `WITH clock AS (SELECT ${clock('$7')} AS now),
alive AS (
  INSERT INTO ${n.nodes} (id, expires) SELECT $3, clock.now + $6::bigint FROM clock
  ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires
),
added AS (
  INSERT INTO ${n.presence} (topic, connection_id, node, data) VALUES ($1, $2, $3, $4)
  ON CONFLICT (topic, connection_id) DO UPDATE SET node = EXCLUDED.node, data = EXCLUDED.data
)
SELECT pg_notify('${n.channel}', ${frame('$1', '$5', `'j' || ${NL} || $2 || ${NL} || $4`)})`

  // $1 topic, $2 connection id, $3 topic length. The topic's length is ours: SQL's
  // length() counts characters, JavaScript UTF-16 units.
  const leave = `WITH d AS (DELETE FROM ${n.presence} WHERE topic = $1 AND connection_id = $2 RETURNING topic, connection_id, data)
SELECT pg_notify('${n.channel}', ${frame('d.topic', '$3', `'l' || ${NL} || d.connection_id || ${NL} || d.data`)}) FROM d`

  // $1 topic, $2 test clock.
  const members = `SELECT p.connection_id, p.data FROM ${n.presence} p JOIN ${n.nodes} nd ON nd.id = p.node
WHERE p.topic = $1 AND nd.expires > ${clock('$2')} ORDER BY p.connection_id`

  // $1 node, $2 expiry (ms ahead), $3 test clock.
  const beat = `INSERT INTO ${n.nodes} (id, expires) VALUES ($1, ${clock('$3')} + $2::bigint)
ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires`

  // Dead nodes go with their members, each leave announced once (the DELETE takes the
  // rows: two sweeping nodes never both return one). Topics whose length in UTF-16
  // units differs from their length in characters are told by the JS side (sweep()).
  // $1 test clock.
  const sweep = `WITH dead AS (DELETE FROM ${n.nodes} WHERE expires <= ${clock('$1')} RETURNING id),
d AS (DELETE FROM ${n.presence} p USING dead WHERE p.node = dead.id RETURNING p.topic, p.connection_id, p.data)
SELECT d.topic, d.connection_id, d.data FROM d`

  // $1 node: this node leaves with its members (close).
  const forget = `WITH gone AS (DELETE FROM ${n.nodes} WHERE id = $1),
d AS (DELETE FROM ${n.presence} WHERE node = $1 RETURNING topic, connection_id, data)
SELECT d.topic, d.connection_id, d.data FROM d`

  // $1 a whole frame, built by the caller (commands, and the leaves of sweep and forget).
  const notify = `SELECT pg_notify('${n.channel}', $1)`
  const payload = `SELECT body FROM ${n.payloads} WHERE id = $1`
  // $1 how old (ms), $2 test clock.
  const dropPayloads = `DELETE FROM ${n.payloads} WHERE at <= ${clock('$2')} - $1::bigint`

  // $1 id, $2 token, $3 pending ms, $4 test clock. A row back: claimed.
  const claim = `WITH clock AS (SELECT ${clock('$4')} AS now)
INSERT INTO ${n.idempotency} AS cur (id, token, answer, expires) SELECT $1, $2, '', clock.now + $3::bigint FROM clock
ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, answer = '', expires = EXCLUDED.expires
WHERE cur.expires <= EXCLUDED.expires - $3::bigint OR cur.token = EXCLUDED.token
RETURNING 1`
  // $1 id, $2 test clock: what holds a scope that could not be claimed.
  const held = `SELECT token, answer FROM ${n.idempotency} WHERE id = $1 AND expires > ${clock('$2')}`
  // $1 id, $2 token, $3 answer, $4 ttl ms, $5 test clock.
  const settle = `UPDATE ${n.idempotency} SET token = NULL, answer = $3, expires = ${clock('$5')} + $4::bigint
WHERE id = $1 AND token = $2 AND expires > ${clock('$5')}`
  const drop = `DELETE FROM ${n.idempotency} WHERE id = $1 AND token = $2 AND expires > ${clock('$3')}`

  return { publish, position, read, join, leave, members, beat, sweep, forget, notify, payload, dropPayloads, claim, held, settle, drop }
}
