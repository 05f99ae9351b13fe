-- Every graph change first asks for the latest turn the graph changed in, which
-- includes the turn its latest row was closed in (valid_to). Without an index that
-- reads each row the session's graph ever held; only closed rows are indexed, so
-- writing a new node or edge costs nothing more.
CREATE INDEX graph_nodes_closed ON graph_nodes (session_id, valid_to)
    WHERE valid_to IS NOT NULL;
CREATE INDEX graph_edges_closed ON graph_edges (session_id, valid_to)
    WHERE valid_to IS NOT NULL;
