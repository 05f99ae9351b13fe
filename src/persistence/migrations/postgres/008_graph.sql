-- The same tables and rules as the SQLite schema 006 (see there for why).
CREATE TABLE graph_nodes (
    session_id    text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    node_id       text COLLATE "C" NOT NULL,
    valid_from    integer NOT NULL CHECK (valid_from >= 0),
    valid_to      integer CHECK (valid_to > valid_from),
    type          text    NOT NULL,
    label         text    NOT NULL,
    confidence    double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    properties    text    NOT NULL,
    provenance    text    NOT NULL,
    embedding     bytea,
    superseded_by text COLLATE "C",
    first_turn    integer NOT NULL,
    last_turn     integer NOT NULL,
    PRIMARY KEY (session_id, node_id, valid_from)
);

CREATE UNIQUE INDEX graph_nodes_standing ON graph_nodes (session_id, node_id)
    WHERE valid_to IS NULL;
CREATE INDEX graph_nodes_by_turn ON graph_nodes (session_id, valid_from);

CREATE TABLE graph_edges (
    session_id  text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    edge_id     text COLLATE "C" NOT NULL,
    valid_from  integer NOT NULL CHECK (valid_from >= 0),
    valid_to    integer CHECK (valid_to > valid_from),
    source      text COLLATE "C" NOT NULL,
    target      text COLLATE "C" NOT NULL,
    type        text    NOT NULL,
    confidence  double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    properties  text    NOT NULL,
    provenance  text    NOT NULL,
    PRIMARY KEY (session_id, edge_id, valid_from)
);

CREATE UNIQUE INDEX graph_edges_standing ON graph_edges (session_id, edge_id)
    WHERE valid_to IS NULL;
CREATE INDEX graph_edges_by_turn ON graph_edges (session_id, valid_from);
CREATE INDEX graph_edges_by_source ON graph_edges (session_id, source) WHERE valid_to IS NULL;
CREATE INDEX graph_edges_by_target ON graph_edges (session_id, target) WHERE valid_to IS NULL;
