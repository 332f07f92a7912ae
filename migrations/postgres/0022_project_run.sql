-- How a project runs: the command typed in a terminal in its folder, and the port its app
-- listens on, which "Run and preview" shows in the preview pane. Both optional.
ALTER TABLE projects ADD COLUMN run_command TEXT;
ALTER TABLE projects ADD COLUMN run_port BIGINT;
