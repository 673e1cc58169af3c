//! A statement assembled from fixed fragments, for queries whose `WHERE` depends on which filters
//! a caller set. Only `&'static str` fragments can be pushed and every value goes through a
//! numbered bind parameter (`$1`, `$2`, … which both SQLite and PostgreSQL accept), so no input ever
//! becomes SQL text. sqlx's own `QueryBuilder` cannot be used with the `Any` driver: it writes `?`
//! parameter markers, which PostgreSQL rejects.

use std::fmt::Write as _;

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, AssertSqlSafe, Encode, Type};

use crate::db::StoreError;

pub(crate) struct Sql {
    text: String,
    args: AnyArguments,
    count: usize,
    error: Option<String>,
}

impl Sql {
    pub(crate) fn new(fragment: &'static str) -> Self {
        Self {
            text: fragment.to_string(),
            args: AnyArguments::default(),
            count: 0,
            error: None,
        }
    }

    pub(crate) fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends the next numbered parameter, bound to `value`.
    pub(crate) fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        self.count += 1;
        // Writing an integer into a String cannot fail.
        let _ = write!(self.text, "${}", self.count);
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert_with(|| e.to_string());
        }
        self
    }

    /// Appends a row count as a literal, for a `LIMIT` the planner must see: PostgreSQL plans a
    /// parameter there as a tenth of the table, and a plan made once for every value (the generic
    /// plans `Database::connect` asks for) then joins and sorts for thousands of rows to return 50.
    /// Only an integer is written, so no input becomes SQL text.
    pub(crate) fn push_count(&mut self, rows: i64) -> &mut Self {
        // Writing an integer into a String cannot fail.
        let _ = write!(self.text, "{rows}");
        self
    }

    /// Puts the statement so far between two fixed fragments (it becomes a subquery); the
    /// parameters keep their numbers, so binding can go on after it.
    pub(crate) fn wrap(&mut self, before: &'static str, after: &'static str) -> &mut Self {
        self.text.insert_str(0, before);
        self.text.push_str(after);
        self
    }

    /// The statement text (for tests and query plans).
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn finish(self) -> Result<(AssertSqlSafe<String>, AnyArguments), StoreError> {
        if let Some(error) = self.error {
            return Err(StoreError::Query(sqlx::Error::Encode(error.into())));
        }
        // Safe: the text is fixed fragments and numbered parameters only (see the module comment).
        Ok((AssertSqlSafe(self.text), self.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_order() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE a = ");
        sql.bind("x").push(" AND b = ").bind(3_i64);
        assert_eq!(sql.text(), "SELECT 1 FROM t WHERE a = $1 AND b = $2");
    }

    #[test]
    fn a_count_is_written_as_a_literal_between_numbered_parameters() {
        let mut sql = Sql::new("SELECT id FROM t WHERE a = ");
        sql.bind("x")
            .push(" LIMIT ")
            .push_count(50)
            .push(" OFFSET ")
            .bind(100_i64);
        assert_eq!(
            sql.text(),
            "SELECT id FROM t WHERE a = $1 LIMIT 50 OFFSET $2"
        );
        let (_, args) = sql.finish().expect("no encoding error");
        assert_eq!(args.len(), 2);
    }

    #[test]
    fn a_wrapped_statement_keeps_its_parameters_and_numbers_on() {
        let mut sql = Sql::new("SELECT id FROM t WHERE a = ");
        sql.bind("x")
            .wrap("SELECT * FROM (", ") p WHERE b = ")
            .bind(3_i64);
        assert_eq!(
            sql.text(),
            "SELECT * FROM (SELECT id FROM t WHERE a = $1) p WHERE b = $2"
        );
        let (_, args) = sql.finish().expect("no encoding error");
        assert_eq!(args.len(), 2);
    }
}
