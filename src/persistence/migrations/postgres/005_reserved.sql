-- Reserved for the studies, turns and history schema, being written alongside
-- full-text search; this step changes nothing and gives way to it on merge.
SELECT 1;
