using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using Npgsql;
using SQLite;

namespace LambdaService.Api.Storage;

/// <summary>
/// The operations the service runs on its records, the same on SQLite and PostgreSQL. SQL is written once, in the dialect
/// both accept (unquoted column names, <c>?</c> positional parameters, <c>ON CONFLICT … DO NOTHING</c>, <c>LIMIT … OFFSET</c>).
/// Records are the classes in <see cref="MetadataStore.RecordTypes"/>: table name from <see cref="TableAttribute"/>, key from
/// <see cref="PrimaryKeyAttribute"/>, one column per public property.
/// </summary>
public interface IDb
{
    /// <summary>Runs a statement; returns the rows it changed.</summary>
    int Execute(string sql, params object?[] args);

    /// <summary>The first column of the first row, converted to <typeparamref name="T"/> (default when there is no row or it is NULL).</summary>
    T ExecuteScalar<T>(string sql, params object?[] args);

    /// <summary>Rows as records.</summary>
    List<T> Query<T>(string sql, params object?[] args) where T : new();

    /// <summary>The record with this key, or null.</summary>
    T? Find<T>(string key) where T : class, new();

    /// <summary>Adds a record (a duplicate key throws).</summary>
    void Insert<T>(T record) where T : notnull;

    /// <summary>Adds a record unless one with its key exists; returns whether it was added.</summary>
    bool InsertIfAbsent<T>(T record) where T : notnull;

    /// <summary>Writes every column of the record with this key.</summary>
    void Update<T>(T record) where T : notnull;

    /// <summary>Removes the record with this key.</summary>
    void Delete<T>(string key);
}

/// <summary>Column layout of one record class, read once by reflection.</summary>
internal sealed class RecordTable
{
    private static readonly ConcurrentDictionary<Type, RecordTable> Cache = new();

    private RecordTable(Type type)
    {
        Name = type.GetCustomAttribute<TableAttribute>()?.Name ?? throw new ArgumentException($"{type.Name} has no [Table] attribute.", nameof(type));
        Columns = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p is { CanRead: true, CanWrite: true }).ToArray();
        Key = Columns.Single(p => p.GetCustomAttribute<PrimaryKeyAttribute>() is not null);
        Indexed = Columns.Where(p => p.GetCustomAttribute<IndexedAttribute>() is not null).ToArray();
        ByName = Columns.ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
    }

    public string Name { get; }

    public PropertyInfo[] Columns { get; }

    public PropertyInfo Key { get; }

    public PropertyInfo[] Indexed { get; }

    public Dictionary<string, PropertyInfo> ByName { get; }

    public static RecordTable Of(Type type) => Cache.GetOrAdd(type, t => new RecordTable(t));

    /// <summary>An <c>INSERT</c> of every column with <c>?</c> parameters, in <see cref="Columns"/> order.</summary>
    public string InsertSql() => $"INSERT INTO {Name} ({string.Join(", ", Columns.Select(c => c.Name))}) VALUES ({string.Join(", ", Columns.Select(_ => "?"))})";

    /// <summary>The record's values in <see cref="Columns"/> order.</summary>
    public object?[] ValuesOf(object record) => Columns.Select(c => c.GetValue(record)).ToArray();
}

/// <summary><see cref="IDb"/> over one sqlite-net connection (the embedded mode).</summary>
internal sealed class SqliteDb(SQLiteConnection db) : IDb
{
    public int Execute(string sql, params object?[] args) => db.Execute(sql, args);

    public T ExecuteScalar<T>(string sql, params object?[] args) => db.ExecuteScalar<T>(sql, args);

    public List<T> Query<T>(string sql, params object?[] args) where T : new() => db.Query<T>(sql, args);

    public T? Find<T>(string key) where T : class, new() => db.Find<T>(key);

    public void Insert<T>(T record) where T : notnull => db.Insert(record);

    public bool InsertIfAbsent<T>(T record) where T : notnull
    {
        var table = RecordTable.Of(typeof(T));
        return db.Execute(table.InsertSql() + " ON CONFLICT DO NOTHING", table.ValuesOf(record)) == 1;
    }

    public void Update<T>(T record) where T : notnull => db.Update(record);

    public void Delete<T>(string key) => db.Delete<T>(key);

}

/// <summary>
/// <see cref="IDb"/> over one PostgreSQL connection (and its transaction, for writes). <c>?</c> parameters become
/// <c>$1, $2, …</c>; times are written as UTC <c>timestamptz</c>; columns map to properties by name, ignoring case
/// (PostgreSQL folds unquoted names to lower case).
/// </summary>
internal sealed class PostgresDb(NpgsqlConnection connection, NpgsqlTransaction? transaction) : IDb
{
    public int Execute(string sql, params object?[] args)
    {
        using var command = Command(sql, args);
        return command.ExecuteNonQuery();
    }

    public T ExecuteScalar<T>(string sql, params object?[] args)
    {
        using var command = Command(sql, args);
        var value = command.ExecuteScalar();
        if (value is null or DBNull) return default!;
        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)(target.IsInstanceOfType(value) ? value : Convert.ChangeType(value, target, System.Globalization.CultureInfo.InvariantCulture));
    }

    public List<T> Query<T>(string sql, params object?[] args) where T : new()
    {
        var table = RecordTable.Of(typeof(T));
        using var command = Command(sql, args);
        using var reader = command.ExecuteReader();
        var columns = Enumerable.Range(0, reader.FieldCount).Select(i => table.ByName.GetValueOrDefault(reader.GetName(i))).ToArray();
        var rows = new List<T>();
        while (reader.Read())
        {
            var row = new T();
            for (var i = 0; i < columns.Length; i++)
            {
                if (columns[i] is not { } property || reader.IsDBNull(i)) continue;
                property.SetValue(row, FromDb(reader.GetValue(i), property.PropertyType));
            }
            rows.Add(row);
        }
        return rows;
    }

    public T? Find<T>(string key) where T : class, new()
    {
        var table = RecordTable.Of(typeof(T));
        return Query<T>($"SELECT * FROM {table.Name} WHERE {table.Key.Name} = ?", key).FirstOrDefault();
    }

    public void Insert<T>(T record) where T : notnull
    {
        var table = RecordTable.Of(typeof(T));
        Execute(table.InsertSql(), table.ValuesOf(record));
    }

    public bool InsertIfAbsent<T>(T record) where T : notnull
    {
        var table = RecordTable.Of(typeof(T));
        return Execute(table.InsertSql() + " ON CONFLICT DO NOTHING", table.ValuesOf(record)) == 1;
    }

    public void Update<T>(T record) where T : notnull
    {
        var table = RecordTable.Of(typeof(T));
        var columns = table.Columns.Where(c => c != table.Key).ToArray();
        var sql = $"UPDATE {table.Name} SET {string.Join(", ", columns.Select(c => c.Name + " = ?"))} WHERE {table.Key.Name} = ?";
        Execute(sql, [.. columns.Select(c => c.GetValue(record)), table.Key.GetValue(record)]);
    }

    public void Delete<T>(string key)
    {
        var table = RecordTable.Of(typeof(T));
        Execute($"DELETE FROM {table.Name} WHERE {table.Key.Name} = ?", key);
    }

    private NpgsqlCommand Command(string sql, object?[] args)
    {
        var command = new NpgsqlCommand(Positional(sql), connection, transaction);
        foreach (var arg in args) command.Parameters.Add(new NpgsqlParameter { Value = ToDb(arg) });
        return command;
    }

    /// <summary>Numbers the <c>?</c> placeholders (none of the service's statements has a <c>?</c> inside a literal).</summary>
    internal static string Positional(string sql)
    {
        var text = new StringBuilder(sql.Length + 8);
        var n = 0;
        var quoted = false;
        foreach (var c in sql)
        {
            if (c == '\'') quoted = !quoted;
            if (c == '?' && !quoted) text.Append('$').Append(++n);
            else text.Append(c);
        }
        return text.ToString();
    }

    private static object ToDb(object? value) => value switch
    {
        null => DBNull.Value,
        DateTime { Kind: DateTimeKind.Utc } t => t,
        DateTime { Kind: DateTimeKind.Local } t => t.ToUniversalTime(),
        DateTime t => DateTime.SpecifyKind(t, DateTimeKind.Utc),
        _ => value,
    };

    private static object? FromDb(object value, Type type)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (target.IsInstanceOfType(value)) return value;
        return Convert.ChangeType(value, target, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The PostgreSQL column type of a record property.</summary>
    internal static string ColumnType(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(string)) return "text";
        if (t == typeof(int)) return "integer";
        if (t == typeof(long)) return "bigint";
        if (t == typeof(double)) return "double precision";
        if (t == typeof(bool)) return "boolean";
        if (t == typeof(DateTime)) return "timestamptz";
        throw new NotSupportedException($"no PostgreSQL column type for {t.Name}");
    }
}
