//! The starters a project can be made from: small, runnable, and written out with the
//! project's name in place of `{{name}}`.

/// One starter: its name, what it is, and its files (path, content).
#[derive(Debug)]
pub struct Template {
    pub name: &'static str,
    pub title: &'static str,
    pub files: &'static [(&'static str, &'static str)],
    /// How it runs: the command typed in its folder, and the port its app listens on.
    pub run: (&'static str, u16),
}

macro_rules! files {
    ($dir:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $dir, "/", $path)))),+]
    };
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "rust-axum",
        run: ("cargo run", 3000),
        title: "Rust + axum",
        files: files!("rust-axum": "Cargo.toml", "src/main.rs", "README.md", ".gitignore"),
    },
    Template {
        name: "node-express",
        run: ("npm install && npm start", 3000),
        title: "Node + Express",
        files: files!("node-express": "package.json", "index.js", "README.md", ".gitignore"),
    },
    Template {
        name: "python-flask",
        run: (
            "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt && flask --app app run",
            5000,
        ),
        title: "Python + Flask",
        files: files!("python-flask": "app.py", "requirements.txt", "README.md", ".gitignore"),
    },
    Template {
        name: "react-ts",
        run: ("npm install && npm run dev", 5173),
        title: "React + TypeScript",
        files: files!(
            "react-ts": "package.json",
            "index.html",
            "tsconfig.json",
            "vite.config.ts",
            "src/main.tsx",
            "src/App.tsx",
            "README.md",
            ".gitignore",
        ),
    },
];

pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// A file's content for a project called `project`.
pub fn render(content: &str, project: &str) -> String {
    content.replace("{{name}}", project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_the_project_and_has_a_readme() {
        for t in TEMPLATES {
            assert!(t.files.iter().any(|(p, _)| *p == "README.md"), "{}", t.name);
            let all: String = t.files.iter().map(|(_, c)| render(c, "shop")).collect();
            assert!(all.contains("shop") && !all.contains("{{name}}"), "{}", t.name);
        }
        assert!(find("react-ts").is_some() && find("cobol").is_none());
        // JSX's double braces are left alone.
        assert!(render("style={{ a: 1 }} {{name}}", "x").starts_with("style={{ a: 1 }}"));
    }
}
