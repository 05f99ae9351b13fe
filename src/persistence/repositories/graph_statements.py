"""The conversation graph's statements (see `statements` for how a Query is written).

A row is one version of a node or edge, standing from `valid_from` until
`valid_to` (NULL while it stands); `:turn` is the turn a change belongs to.
"""

from __future__ import annotations

from src.persistence.repositories.statements import Query, id_list_query, query

_NODE_FIELDS = "type, label, confidence, properties, provenance, embedding, superseded_by"
_EDGE_FIELDS = "source, target, type, confidence, properties, provenance"
_STANDING = "session_id = :session_id AND valid_to IS NULL"
_AS_OF = (
    "session_id = :session_id AND valid_from <= :turn AND (valid_to IS NULL OR valid_to > :turn)"
)
# On SQLite, `+valid_from` keeps the turn index out of it: the graph as of a turn is most
# of the session's rows, read faster in key order than looked up one by one from that
# index. PostgreSQL's planner weighs the index by its statistics and needs no such hint.
_AS_OF_SQLITE = _AS_OF.replace("valid_from", "+valid_from")

LAST_CHANGE = query(
    """
SELECT max(turn) FROM (
    SELECT max(valid_from) AS turn FROM graph_nodes WHERE session_id = :session_id
    UNION ALL SELECT max(valid_to) FROM graph_nodes
        WHERE session_id = :session_id AND valid_to IS NOT NULL
    UNION ALL SELECT max(valid_from) FROM graph_edges WHERE session_id = :session_id
    UNION ALL SELECT max(valid_to) FROM graph_edges
        WHERE session_id = :session_id AND valid_to IS NOT NULL
) AS turns
"""
)

UTTERANCE_LENGTH = query(
    """
SELECT length(text) FROM utterances
WHERE session_id = :session_id AND turn_number = :turn_number AND speaker = :speaker
"""
)

STANDING_NODE = query(
    f"SELECT valid_from, first_turn, superseded_by FROM graph_nodes WHERE {_STANDING}"  # noqa: S608
    " AND node_id = :node_id"
)


def _standing_of(table: str, id_column: str, columns: str) -> Query:
    """The standing rows whose ids are in `:ids` (a JSON array), each led by its id."""
    return id_list_query(
        f"SELECT {id_column}, {columns} FROM {table} WHERE {_STANDING}"  # noqa: S608
        f" AND {id_column} IN {{ids}}",
        "ids",
        "ids",
    )


STANDING_NODES = _standing_of("graph_nodes", "node_id", "valid_from, first_turn")
STANDING_EDGES = _standing_of("graph_edges", "edge_id", "valid_from")

# Standing nodes superseded by a node of `:ids` (a JSON array) that no longer stands.
SUPERSEDED_BY_GONE = id_list_query(
    """
SELECT node.node_id, node.superseded_by FROM graph_nodes AS node
WHERE node.session_id = :session_id AND node.valid_to IS NULL
  AND node.superseded_by IN {ids}
  AND NOT EXISTS (
    SELECT 1 FROM graph_nodes AS successor
    WHERE successor.session_id = node.session_id AND successor.valid_to IS NULL
      AND successor.node_id = node.superseded_by
  )
""",
    "ids",
    "ids",
)

INSERT_NODE = query(
    f"""
INSERT INTO graph_nodes (session_id, node_id, valid_from, {_NODE_FIELDS}, first_turn, last_turn)
VALUES (:session_id, :node_id, :turn, :type, :label, :confidence, :properties, :provenance,
        :embedding, :superseded_by, :first_turn, :turn)
"""  # noqa: S608
)

REWRITE_NODE = query(
    f"""
UPDATE graph_nodes
SET type = :type, label = :label, confidence = :confidence, properties = :properties,
    provenance = :provenance, embedding = :embedding, superseded_by = :superseded_by
WHERE {_STANDING} AND node_id = :node_id AND valid_from = :turn
"""  # noqa: S608
)

CLOSE_NODE = query(
    f"UPDATE graph_nodes SET valid_to = :turn WHERE {_STANDING}"  # noqa: S608
    " AND node_id = :node_id AND valid_from < :turn"
)

DROP_NODE = query(
    f"DELETE FROM graph_nodes WHERE {_STANDING}"  # noqa: S608
    " AND node_id = :node_id AND valid_from = :turn"
)

INSERT_EDGE = query(
    f"""
INSERT INTO graph_edges (session_id, edge_id, valid_from, {_EDGE_FIELDS})
VALUES (:session_id, :edge_id, :turn, :source, :target, :type, :confidence, :properties,
        :provenance)
"""  # noqa: S608
)

REWRITE_EDGE = query(
    f"""
UPDATE graph_edges
SET source = :source, target = :target, type = :type, confidence = :confidence,
    properties = :properties, provenance = :provenance
WHERE {_STANDING} AND edge_id = :edge_id AND valid_from = :turn
"""  # noqa: S608
)

CLOSE_EDGE = query(
    f"UPDATE graph_edges SET valid_to = :turn WHERE {_STANDING}"  # noqa: S608
    " AND edge_id = :edge_id AND valid_from < :turn"
)

DROP_EDGE = query(
    f"DELETE FROM graph_edges WHERE {_STANDING}"  # noqa: S608
    " AND edge_id = :edge_id AND valid_from = :turn"
)

_ENDS_AT = "(source = :node_id OR target = :node_id)"

CLOSE_NODE_EDGES = query(
    f"UPDATE graph_edges SET valid_to = :turn WHERE {_STANDING}"  # noqa: S608
    f" AND {_ENDS_AT} AND valid_from < :turn"
)

DROP_NODE_EDGES = query(
    f"DELETE FROM graph_edges WHERE {_STANDING} AND {_ENDS_AT} AND valid_from = :turn"  # noqa: S608
)

EMBEDDING_LENGTHS = query(
    f"""
SELECT DISTINCT length(embedding) FROM graph_nodes
WHERE {_STANDING} AND embedding IS NOT NULL
ORDER BY 1
"""  # noqa: S608
)

# A graph is read as one JSON array per table, put together by the database
# from each row's columns and its stored JSON text as it is (no JSON function
# reparses a value, as for state.data), so that a few thousand rows cost one
# value to fetch and one pass of pydantic-core to read. Embeddings, stored as
# bytes, come apart.
_NODE_JSON = (
    """'{{"id":' || {q}(node_id) || ',"type":' || {q}(type) || ',"label":' || {q}(label)"""
    """ || ',"confidence":' || {n} || ',"properties":' || properties"""
    """ || ',"provenance":' || provenance || ',"superseded_by":' || {nullable}"""
    """ || ',"first_turn":' || first_turn || ',"last_turn":' || last_turn || '}}'"""
)
_EDGE_JSON = (
    """'{{"id":' || {q}(edge_id) || ',"source":' || {q}(source) || ',"target":' || {q}(target)"""
    """ || ',"type":' || {q}(type) || ',"confidence":' || {n}"""
    """ || ',"properties":' || properties || ',"provenance":' || provenance || '}}'"""
)


def _json_array(table: str, item: str) -> tuple[str, str]:
    # In no particular order (the reader sorts). A float is written with all the digits
    # that give it back exactly: printf's 17 in SQLite, to_json's shortest in PostgreSQL.
    sqlite_item = item.format(
        q="json_quote", n="printf('%!.17g', confidence)", nullable="json_quote(superseded_by)"
    )
    postgres_item = item.format(
        q="to_json",
        n="to_json(confidence)",
        nullable="coalesce(to_json(superseded_by)::text, 'null')",
    )
    sqlite = f"""
SELECT '[' || coalesce(group_concat({sqlite_item}, ','), '') || ']'
FROM {table} WHERE {_AS_OF_SQLITE}
"""  # noqa: S608
    postgres = f"""
SELECT '[' || coalesce(string_agg({postgres_item}, ','), '') || ']'
FROM {table} WHERE {_AS_OF}
"""  # noqa: S608
    return sqlite, postgres


_NODES_SQLITE, _NODES_POSTGRES = _json_array("graph_nodes", _NODE_JSON)
NODES_AS_OF = query(_NODES_SQLITE, postgres=_NODES_POSTGRES)

_EDGES_SQLITE, _EDGES_POSTGRES = _json_array("graph_edges", _EDGE_JSON)
EDGES_AS_OF = query(_EDGES_SQLITE, postgres=_EDGES_POSTGRES)

_EMBEDDINGS = "SELECT node_id, embedding FROM graph_nodes WHERE {} AND embedding IS NOT NULL"
EMBEDDINGS_AS_OF = query(_EMBEDDINGS.format(_AS_OF_SQLITE), postgres=_EMBEDDINGS.format(_AS_OF))

# The probe of a nearest-nodes query, with what every graph write changes (the version)
# and what tells a session from one made again under its id (the creation time); on
# PostgreSQL also the row's xmin, which a reload of older data (pg_restore under
# running servers) changes too. `found` is NULL when no standing node has the id.
_PROBE = """
SELECT {revision}, probe.found, probe.embedding
FROM sessions AS s LEFT JOIN (
    SELECT 1 AS found, embedding FROM graph_nodes
    WHERE session_id = :session_id AND valid_to IS NULL AND node_id = :node_id
) AS probe ON TRUE
WHERE s.id = :session_id
"""
NEAREST_PROBE = query(
    _PROBE.format(revision="s.created_at, s.version"),
    postgres=_PROBE.format(revision="s.created_at, s.version, s.xmin::text"),
)

EMBEDDINGS_OF_SIZE = query(
    f"""
SELECT node_id, embedding FROM graph_nodes
WHERE {_STANDING} AND embedding IS NOT NULL AND length(embedding) = :size
"""  # noqa: S608
)

COPY_NODES = query(
    f"""
INSERT INTO graph_nodes (session_id, node_id, valid_from, valid_to, {_NODE_FIELDS},
                         first_turn, last_turn)
SELECT :new_id, node_id, valid_from,
       CASE WHEN valid_to <= :turn THEN valid_to END, {_NODE_FIELDS}, first_turn, last_turn
FROM graph_nodes
WHERE session_id = :session_id AND valid_from <= :turn
""",  # noqa: S608
    types={"new_id": "text"},
)

COPY_EDGES = query(
    f"""
INSERT INTO graph_edges (session_id, edge_id, valid_from, valid_to, {_EDGE_FIELDS})
SELECT :new_id, edge_id, valid_from,
       CASE WHEN valid_to <= :turn THEN valid_to END, {_EDGE_FIELDS}
FROM graph_edges
WHERE session_id = :session_id AND valid_from <= :turn
""",  # noqa: S608
    types={"new_id": "text"},
)
