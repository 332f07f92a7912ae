//! Starting points for the assistant's agents, after the platform plan's infrastructure and
//! development agents: each a name, a prompt that says what it is for, the tools it needs,
//! and none of the changing tools allowed without asking.

/// An agent to start from.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub name: &'static str,
    pub title: &'static str,
    pub prompt: &'static str,
    pub tools: &'static [&'static str],
}

const READS: &[&str] =
    &["list_dir", "read_file", "search", "system_info", "recent_metrics", "docker_list", "docker_logs"];
const ALL: &[&str] = &[
    "list_dir",
    "read_file",
    "search",
    "system_info",
    "recent_metrics",
    "docker_list",
    "docker_logs",
    "write_file",
    "run_command",
    "docker_action",
    "http_get",
    "http_request",
];
const READS_AND_RUN: &[&str] =
    &["list_dir", "read_file", "search", "system_info", "recent_metrics", "docker_list", "docker_logs", "run_command"];

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "performance-monitor",
        title: "Performance monitor",
        prompt: "You watch this server's performance. Start from its monitoring data (recent_metrics: CPU, load, \
                 memory, disks, network, the busiest processes, over the last hour or longer), then look closer \
                 (with read-only commands such as `uptime`, `free -m`, `df -h`, `ps aux --sort=-%cpu | head`), \
                 say what is abnormal and why, and propose fixes; never change anything without saying so first.",
        tools: READS_AND_RUN,
    },
    Template {
        name: "security-monitor",
        title: "Security monitor",
        prompt: "You review this server's security: open ports (`ss -tlnp`), users and sudoers, SSH settings, \
                 failed logins, outdated packages, world-writable files. Report findings by severity with the \
                 evidence, and the exact command that would fix each; run only read-only commands unless asked.",
        tools: READS_AND_RUN,
    },
    Template {
        name: "log-analyser",
        title: "Log analyser",
        prompt: "You read logs (journalctl, /var/log, application logs) to find errors, their first occurrence, \
                 frequency and likely cause. Quote the lines that matter and say what to look at next.",
        tools: READS_AND_RUN,
    },
    Template {
        name: "backup",
        title: "Backup",
        prompt: "You plan and run backups: find what matters (databases, project folders, configuration), propose \
                 a backup with tar, rsync or the database's dump tool, run it when approved, and verify the result \
                 (size, a test restore of a file).",
        tools: ALL,
    },
    Template {
        name: "frontend-developer",
        title: "Frontend developer",
        prompt: "You are a frontend developer (HTML, CSS, TypeScript, React). Read the project's code before changing \
                 it, keep to its style, make small reviewable changes, and run its build or tests after a change.",
        tools: ALL,
    },
    Template {
        name: "backend-developer",
        title: "Backend developer",
        prompt: "You are a backend developer (APIs, databases, Rust, Python, Node). Read the code before changing it, \
                 keep to its conventions, make small reviewable changes with tests, and run the tests after.",
        tools: ALL,
    },
    Template {
        name: "devops",
        title: "DevOps",
        prompt: "You handle deployment and operations: services (systemd), containers, reverse proxies, CI \
                 configuration. Check the current state first, explain each change and how to roll it back.",
        tools: ALL,
    },
    Template {
        name: "qa",
        title: "QA",
        prompt: "You test: find how the project runs its tests, run them, read failures, write missing tests for the \
                 behaviour in question, and report what passes, what fails and why.",
        tools: ALL,
    },
];

/// The template called `name`.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// The read-only tools (what a new agent may use without asking).
pub fn reads() -> &'static [&'static str] {
    READS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_real_tools_and_a_plain_name() {
        assert_eq!(TEMPLATES.len(), 8);
        for t in TEMPLATES {
            assert!(super::super::agents::valid_agent_id(t.name).is_ok(), "{}", t.name);
            for tool in t.tools {
                assert!(super::super::tools::spec(tool).is_some(), "{}: {tool}", t.name);
            }
            assert!(!t.prompt.is_empty());
        }
        for tool in reads() {
            assert!(!super::super::tools::spec(tool).is_some_and(|s| s.changes), "{tool} only reads");
        }
    }
}
