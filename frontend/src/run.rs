//! "Run and preview": a project's run command typed into a new terminal opened in its folder
//! (named for the project), and its port in the preview pane, which shows the app as soon as
//! it listens (Porta's "nothing is listening" page tries again by itself). Asked for on the
//! dashboard, done by the server's page when it opens.

use std::cell::RefCell;

/// A project to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub server: String,
    /// The project's name: the terminal's.
    pub name: String,
    /// Its folder, where the terminal starts.
    pub folder: String,
    /// What is typed there (none: the terminal only opens there).
    pub command: Option<String>,
    /// The port its app listens on.
    pub port: u16,
}

impl Run {
    /// The run a project describes, when it names a port.
    pub fn of(p: &crate::projects::Project) -> Option<Self> {
        let port = p.run_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)?;
        Some(Self {
            server: p.server_id.clone(),
            name: p.name.clone(),
            folder: p.path.clone(),
            command: p.run_command.clone().filter(|c| !c.trim().is_empty()),
            port,
        })
    }

    /// What the terminal's tab is called.
    pub fn title(&self) -> String {
        format!("run: {}", self.name)
    }

    /// What a person is told will happen before it does.
    pub fn says(&self) -> String {
        match &self.command {
            Some(c) => format!("Runs `{c}` in {} and shows port {}", self.folder, self.port),
            None => format!("Opens a terminal in {} and shows port {}", self.folder, self.port),
        }
    }
}

thread_local! {
    static ASKED: RefCell<Option<Run>> = const { RefCell::new(None) };
}

/// Leaves `run` for its server's page, which is about to open.
pub fn ask(run: Run) {
    ASKED.with(|a| *a.borrow_mut() = Some(run));
}

/// The run left for `server`'s page, once.
pub fn take(server: &str) -> Option<Run> {
    ASKED.with(|a| {
        let mut asked = a.borrow_mut();
        if asked.as_ref().is_some_and(|r| r.server == server) { asked.take() } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(command: Option<&str>, port: Option<u32>) -> crate::projects::Project {
        crate::projects::Project {
            id: "p1".into(),
            server_id: "s1".into(),
            name: "shop".into(),
            path: "/home/dev/projects/shop".into(),
            source: "template:react-ts".into(),
            repo_url: None,
            created_by_name: None,
            deleted_ms: None,
            run_command: command.map(str::to_owned),
            run_port: port,
        }
    }

    #[test]
    fn a_project_runs_when_it_names_a_port_and_the_run_is_taken_once_by_its_server() {
        assert_eq!(Run::of(&project(Some("npm run dev"), None)), None);
        assert_eq!(Run::of(&project(Some("x"), Some(0))), None);
        let run = Run::of(&project(Some("npm run dev"), Some(5173))).expect("a run");
        assert_eq!((run.port, run.title()), (5173, "run: shop".to_owned()));
        assert_eq!(run.says(), "Runs `npm run dev` in /home/dev/projects/shop and shows port 5173");
        let bare = Run::of(&project(Some("  "), Some(8000))).expect("a run");
        assert_eq!(bare.command, None);
        ask(run.clone());
        assert_eq!(take("s2"), None, "another server's page does not take it");
        assert_eq!(take("s1"), Some(run));
        assert_eq!(take("s1"), None, "taken once");
    }
}
