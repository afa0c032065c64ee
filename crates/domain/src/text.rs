//! Shared rules for user-supplied text.

use thiserror::Error;

/// Why a piece of text was refused. The caller knows which field it was.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("must not be empty or blank")]
    Empty,
    #[error("must be at most {max} characters long, got {actual}")]
    TooLong { max: usize, actual: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not contain NUL characters")]
    Nul,
}

/// A single-line label: not blank, at most `max` characters (Unicode scalar values, as a user
/// counts them), no control characters at all.
pub(crate) fn label(value: &str, max: usize) -> Result<String, TextError> {
    if value.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    free_text(value, max)?;
    if value.trim().is_empty() {
        return Err(TextError::Empty);
    }
    Ok(value.to_owned())
}

/// Free text (descriptions): may be empty and span lines, but never holds NUL, which
/// PostgreSQL cannot store and which no client means to send.
pub(crate) fn free_text(value: &str, max: usize) -> Result<String, TextError> {
    if value.contains('\0') {
        return Err(TextError::Nul);
    }
    let actual = value.chars().count();
    if actual > max {
        return Err(TextError::TooLong { max, actual });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_counts_characters_not_bytes() {
        assert_eq!(label("ééé", 3), Ok("ééé".to_owned()));
        assert_eq!(
            label("éééé", 3),
            Err(TextError::TooLong { max: 3, actual: 4 })
        );
    }

    #[test]
    fn a_blank_label_is_refused() {
        assert_eq!(label("", 5), Err(TextError::Empty));
        assert_eq!(label("   ", 5), Err(TextError::Empty));
    }

    #[test]
    fn control_characters_are_refused_in_labels() {
        assert_eq!(label("a\nb", 5), Err(TextError::ControlCharacter));
        assert_eq!(label("a\0b", 5), Err(TextError::ControlCharacter));
    }

    #[test]
    fn free_text_allows_lines_and_emptiness_but_not_nul() {
        assert_eq!(free_text("", 5), Ok(String::new()));
        assert_eq!(free_text("a\nb", 5), Ok("a\nb".to_owned()));
        assert_eq!(free_text("a\0", 5), Err(TextError::Nul));
    }
}
