//! What a subcommand fails with, and the one place that turns it into
//! text on stderr and an exit code.

use std::process::ExitCode;

use super::exit;
use super::ui::Ui;
use crate::spec::{Diagnostics, OpenError};

/// Why a subcommand stopped.
#[derive(Debug)]
pub enum CommandError {
    /// Located problems in the spec (or a flag), shown as they render.
    Diagnostics(Diagnostics),
    /// A failure, shown with its chain of causes.
    Failed(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A sentence for the person, and what to do about it.
    User {
        message: String,
        hint: Option<String>,
    },
}

impl CommandError {
    /// A failure with its causes.
    pub fn failed(e: impl std::error::Error + Send + Sync + 'static) -> CommandError {
        CommandError::Failed(Box::new(e))
    }

    /// A sentence for the person.
    pub fn user(message: impl Into<String>) -> CommandError {
        CommandError::User {
            message: message.into(),
            hint: None,
        }
    }

    /// A sentence for the person and what to do about it.
    pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> CommandError {
        CommandError::User {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// Prints the error and returns the exit code: 1, always.
    pub fn report(&self, ui: &Ui) -> ExitCode {
        match self {
            CommandError::Diagnostics(diags) => ui.diagnostics(diags),
            CommandError::Failed(e) => ui.error(e.as_ref()),
            CommandError::User { message, hint } => ui.user_error(message, hint.as_deref()),
        }
        ExitCode::from(exit::ERROR)
    }
}

impl From<Diagnostics> for CommandError {
    fn from(diags: Diagnostics) -> Self {
        CommandError::Diagnostics(diags)
    }
}

impl From<OpenError> for CommandError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Invalid(d) | OpenError::Selection(d) => CommandError::Diagnostics(d),
            load @ OpenError::Load(_) => CommandError::failed(load),
        }
    }
}

impl From<Box<crate::spec::Diagnostic>> for CommandError {
    fn from(d: Box<crate::spec::Diagnostic>) -> Self {
        CommandError::Diagnostics(Diagnostics(vec![*d]))
    }
}

/// A subcommand's result: the exit code (0, or 2 for changes pending),
/// or why it stopped.
pub type CommandResult = Result<ExitCode, CommandError>;

/// Success.
pub fn ok() -> CommandResult {
    Ok(ExitCode::from(exit::OK))
}
