-- The conversation graph. A row is one version of a node or edge: valid
-- from the turn whose change wrote it until the turn that replaced or
-- removed it (valid_to, NULL while it stands), so the graph after turn N is
-- the rows with valid_from <= N < valid_to, and history costs a row per
-- changed item, never a copy of the graph. A second change in the same turn
-- rewrites that turn's row. Provenance and properties are compact JSON;
-- an embedding is little-endian float64s.
CREATE TABLE graph_nodes (
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    node_id       TEXT    NOT NULL,
    valid_from    INTEGER NOT NULL CHECK (valid_from >= 0),
    valid_to      INTEGER CHECK (valid_to > valid_from),
    type          TEXT    NOT NULL,
    label         TEXT    NOT NULL,
    confidence    REAL    NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    properties    TEXT    NOT NULL,
    provenance    TEXT    NOT NULL,
    embedding     BLOB,
    superseded_by TEXT,
    first_turn    INTEGER NOT NULL,
    last_turn     INTEGER NOT NULL,
    PRIMARY KEY (session_id, node_id, valid_from)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX graph_nodes_standing ON graph_nodes (session_id, node_id)
    WHERE valid_to IS NULL;
CREATE INDEX graph_nodes_by_turn ON graph_nodes (session_id, valid_from);

CREATE TABLE graph_edges (
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    edge_id     TEXT    NOT NULL,
    valid_from  INTEGER NOT NULL CHECK (valid_from >= 0),
    valid_to    INTEGER CHECK (valid_to > valid_from),
    source      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    confidence  REAL    NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    properties  TEXT    NOT NULL,
    provenance  TEXT    NOT NULL,
    PRIMARY KEY (session_id, edge_id, valid_from)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX graph_edges_standing ON graph_edges (session_id, edge_id)
    WHERE valid_to IS NULL;
CREATE INDEX graph_edges_by_turn ON graph_edges (session_id, valid_from);
CREATE INDEX graph_edges_by_source ON graph_edges (session_id, source) WHERE valid_to IS NULL;
CREATE INDEX graph_edges_by_target ON graph_edges (session_id, target) WHERE valid_to IS NULL;
