//! [`Statement`]: SQL text and the values bound into it, assembled piece by piece in code
//! written once for both databases.
//!
//! sqlx's `QueryBuilder` lends out its text and arguments together, borrowing itself for as
//! long as its arguments' lifetime; code generic over the database cannot shorten that
//! lifetime (the arguments' type is a projection of the database type), so it could never
//! run what it built. A `Statement` hands text and arguments over separately instead. The
//! text it makes is `QueryBuilder`'s, placeholder for placeholder.

use std::fmt::Write as _;

use sqlx::error::BoxDynError;
use sqlx::{Arguments as _, Database, Encode, Type};

pub struct Statement<'q, DB: Database> {
    sql: String,
    arguments: DB::Arguments<'q>,
    /// The first value that failed to encode: the statement fails when it is run.
    failure: Option<BoxDynError>,
}

impl<'q, DB: Database> Statement<'q, DB> {
    pub fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_string(),
            arguments: Default::default(),
            failure: None,
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds a value and appends its placeholder (`?`, or `$n` on PostgreSQL).
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, DB> + Type<DB>,
    {
        if let Err(error) = self.arguments.add(value) {
            self.failure.get_or_insert(error);
        }
        // Writing to a String cannot fail.
        let _ = self.arguments.format_placeholder(&mut self.sql);
        self
    }

    /// Appends `VALUES (…), (…)`: one tuple per item, whose values `tuple` binds.
    pub fn values<I: IntoIterator>(
        &mut self,
        items: I,
        mut tuple: impl FnMut(&mut Tuple<'_, 'q, DB>, I::Item),
    ) -> &mut Self {
        self.push("VALUES ");
        for (index, item) in items.into_iter().enumerate() {
            let _ = write!(self.sql, "{}(", if index == 0 { "" } else { ", " });
            tuple(
                &mut Tuple {
                    statement: self,
                    first: true,
                },
                item,
            );
            self.push(")");
        }
        self
    }

    /// The text, and the arguments to run it with (`sqlx::query_with(&sql, arguments)` and
    /// its `_as` and `_scalar` kin); an error when a value failed to encode.
    pub fn into_parts(self) -> Result<(String, DB::Arguments<'q>), sqlx::Error> {
        match self.failure {
            None => Ok((self.sql, self.arguments)),
            Some(error) => Err(sqlx::Error::Encode(error)),
        }
    }
}

/// The values of one tuple of [`Statement::values`], separated by commas.
pub struct Tuple<'s, 'q, DB: Database> {
    statement: &'s mut Statement<'q, DB>,
    first: bool,
}

impl<'q, DB: Database> Tuple<'_, 'q, DB> {
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, DB> + Type<DB>,
    {
        if !self.first {
            self.statement.push(", ");
        }
        self.first = false;
        self.statement.bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_has_a_placeholder_per_value_in_each_dialect() {
        let mut pg = Statement::<sqlx::Postgres>::new("INSERT INTO t (a, b) ");
        pg.values([(1_i64, 2_i64), (3, 4)], |row, (a, b)| {
            row.bind(a).bind(b);
        })
        .push(" RETURNING ")
        .bind(5_i64);
        let (sql, arguments) = pg.into_parts().unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING $5"
        );
        assert_eq!(arguments.len(), 5);

        let mut lite = Statement::<sqlx::Sqlite>::new("SELECT ");
        lite.bind(1_i64).push(", ").bind("x".to_string());
        assert_eq!(lite.into_parts().unwrap().0, "SELECT ?, ?");
    }
}
