//! Cutting a Go file into coverage blocks, the way `go tool cover` does.
//!
//! This is a port of the walk in Go's `src/cmd/cover/cover.go` (`File.Visit`, `addCounters`,
//! `statementBoundary`, `endsBasicSourceBlock`) from `go/ast` onto the tree-sitter-go syntax
//! tree. The block list that comes out, positions, statement counts and order, must equal what
//! the real tool writes; the conformance suite checks that against `go tool cover` itself.
//!
//! The walk produces *raw* blocks in byte offsets plus the places where counters go. Turning
//! offsets into positions (with `//line` directives) happens in [`crate::analyze`]; writing
//! counters happens in [`crate::rewrite`]. Rules that differ between Go releases belong to
//! [`Rules`]; Go 1.27's cut of a basic block into ranges of code is [`crate::ranges`].

use tree_sitter::{Node, Tree};

use crate::ranges;
use crate::syntax::{named_children, text, token};

/// Which release's block rules to follow: blocks must equal those of the `go tool cover` of
/// the Go that builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rules {
    /// The rules of `go tool cover` from Go 1.20 through Go 1.26: a basic block is one range
    /// from its first statement to where it ends, at positions adjusted by `//line` directives.
    #[default]
    Go120,
    /// Go 1.27's rules: each basic block is cut into the ranges that hold code (split at blank,
    /// comment-only and brace-only lines, rejoined inside a multi-line statement), a block
    /// without code has a zero-width range, and positions ignore `//line` directives.
    Go127,
}

impl Rules {
    /// Every variant, oldest first.
    pub const ALL: [Rules; 2] = [Rules::Go120, Rules::Go127];

    /// The newest Go release whose rules livecov knows.
    pub const NEWEST_MINOR: u32 = 27;
    /// The oldest Go release livecov supports.
    pub const OLDEST_MINOR: u32 = 20;

    /// The rules of Go 1.`minor`, if livecov knows them.
    pub fn for_minor(minor: u32) -> Option<Rules> {
        match minor {
            20..=26 => Some(Rules::Go120),
            27 => Some(Rules::Go127),
            _ => None,
        }
    }

    /// The Go releases that cut blocks this way, for messages: `1.20 to 1.26`, `1.27`.
    pub fn releases(self) -> &'static str {
        match self {
            Rules::Go120 => "Go 1.20 to 1.26",
            Rules::Go127 => "Go 1.27",
        }
    }

    /// A short name for files and keys: `go120`, `go127`.
    pub fn tag(self) -> &'static str {
        match self {
            Rules::Go120 => "go120",
            Rules::Go127 => "go127",
        }
    }

    /// Whether positions follow `//line` directives (they do up to Go 1.26).
    pub fn adjusts_positions(self) -> bool {
        self == Rules::Go120
    }
}

impl std::str::FromStr for Rules {
    type Err = String;

    /// A Go release as `1.N` (or `go1.N`, `go1.N.P`): its rules.
    fn from_str(s: &str) -> Result<Rules, String> {
        let minor = crate::version::minor(s)
            .ok_or_else(|| format!("{s:?} is not a Go release: want 1.N, such as 1.27"))?;
        Rules::for_minor(minor).ok_or_else(|| {
            format!(
                "livecov knows the block rules of Go 1.{} to 1.{}, not of {s}",
                Rules::OLDEST_MINOR,
                Rules::NEWEST_MINOR
            )
        })
    }
}

/// A block in byte offsets, before positions are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlock {
    /// Offset of the block's first byte.
    pub start: usize,
    /// Offset one past the block's last byte.
    pub end: usize,
    /// Number of statements the block counts.
    pub num_stmt: u32,
    /// Index of the enclosing function in [`Cut::funcs`].
    pub func: usize,
}

/// A function (declaration, or literal outside any function) whose blocks are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFunc {
    /// Name as cover's metadata gives it: `F`, `T.M`, `*T.M`, or `func.L<line>.C<col>` for a
    /// literal at package level.
    pub name: String,
    /// Byte range of the whole declaration or literal.
    pub start: usize,
    pub end: usize,
}

/// An insertion into the source that the rewriter performs, in walk order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// The counter statement of block `index`, followed by `;`.
    Counter { offset: usize, index: usize },
    /// Literal text: the braces that wrap an `else if` so its counter has a block to live in.
    Text { offset: usize, text: &'static str },
}

impl Insert {
    pub fn offset(&self) -> usize {
        match *self {
            Insert::Counter { offset, .. } | Insert::Text { offset, .. } => offset,
        }
    }
}

/// The result of cutting one file.
#[derive(Debug, Default)]
pub struct Cut {
    pub blocks: Vec<RawBlock>,
    pub funcs: Vec<RawFunc>,
    pub inserts: Vec<Insert>,
}

/// Cuts the file in `tree` into blocks.
///
/// `func_name_pos` turns a byte offset into the (line, column) used to name a package-level
/// func literal, which must honour `//line` directives as cover does.
pub fn cut(
    src: &[u8],
    tree: &Tree,
    rules: Rules,
    func_name_pos: &dyn Fn(usize) -> (u32, u32),
) -> Cut {
    let mut walker = Walker {
        src,
        rules,
        cut: Cut::default(),
        func: None,
        func_name_pos,
    };
    walker.walk(tree.root_node());
    walker.cut
}

/// One element of a statement list as `addCounters` sees it. cover rewrites labeled
/// statements into "label with an empty statement" followed by the statement itself; these
/// variants stand for the pieces.
#[derive(Debug, Clone, Copy)]
enum Item<'t> {
    Stmt(Node<'t>),
    /// A label whose statement was split off (`L:` counts as one statement on its own).
    LabelOnly(Node<'t>),
    /// The implicit empty statement of `L:` right before a `}`, located at that `}`.
    Implicit(usize),
}

impl Item<'_> {
    fn pos(&self) -> usize {
        match *self {
            Item::Stmt(n) | Item::LabelOnly(n) => n.start_byte(),
            Item::Implicit(at) => at,
        }
    }
}

/// The statement kinds cover distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    If,
    For,
    Range,
    Switch,
    TypeSwitch,
    Select,
    Labeled,
    Branch,
    Panic,
    Other,
}

struct Walker<'s, 'f> {
    src: &'s [u8],
    rules: Rules,
    cut: Cut,
    /// The function whose body is being walked.
    func: Option<usize>,
    func_name_pos: &'f dyn Fn(usize) -> (u32, u32),
}

impl Walker<'_, '_> {
    /// Pre-order walk, mirroring `ast.Walk` with cover's `File.Visit`.
    fn walk<'t>(&mut self, node: Node<'t>) {
        match node.kind() {
            "comment" => {}
            "function_declaration" | "method_declaration" => self.func_decl(node),
            "func_literal" => self.func_lit(node),
            "block" => {
                let lbrace = node.start_byte();
                let rbrace = node.end_byte() - 1;
                let list = statements(node);
                self.add_counters(lbrace, lbrace + 1, lbrace + 1, rbrace + 1, &list, true);
                self.walk_children(node);
            }
            "if_statement" => self.if_stmt(node),
            "expression_switch_statement" | "type_switch_statement" | "select_statement" => {
                self.switch_like(node)
            }
            _ => self.walk_children(node),
        }
    }

    fn walk_children<'t>(&mut self, node: Node<'t>) {
        let mut cursor = node.walk();
        let children: Vec<_> = node.named_children(&mut cursor).collect();
        for child in children {
            self.walk(child);
        }
    }

    fn func_decl<'t>(&mut self, node: Node<'t>) {
        let Some(body) = node.child_by_field_name("body") else {
            return; // Bodyless (assembly or linkname) functions cannot be counted.
        };
        let Some(name_node) = node.child_by_field_name("name") else {
            return;
        };
        let name = String::from_utf8_lossy(text(self.src, name_node)).into_owned();
        if name == "_" {
            return; // Functions named _ cannot run.
        }
        let name = match node.child_by_field_name("receiver") {
            Some(recv) => receiver_prefix(self.src, recv) + &name,
            None => name,
        };
        let outer = self.func.replace(self.cut.funcs.len());
        self.cut.funcs.push(RawFunc {
            name,
            start: node.start_byte(),
            end: node.end_byte(),
        });
        self.walk(body);
        self.func = outer;
    }

    fn func_lit<'t>(&mut self, node: Node<'t>) {
        let Some(body) = node.child_by_field_name("body") else {
            return;
        };
        if self.func.is_some() {
            // A literal inside a function counts as part of that function.
            self.walk(body);
            return;
        }
        let (line, col) = (self.func_name_pos)(node.start_byte());
        self.func = Some(self.cut.funcs.len());
        self.cut.funcs.push(RawFunc {
            name: format!("func.L{line}.C{col}"),
            start: node.start_byte(),
            end: node.end_byte(),
        });
        self.walk(body);
        self.func = None;
    }

    /// `if` walks its header and body, then gives the `else` branch a block starting right after
    /// the `else` keyword; an `else if` is wrapped in a synthetic block holding the inner `if`.
    fn if_stmt<'t>(&mut self, node: Node<'t>) {
        let alternative = node.child_by_field_name("alternative");
        let mut cursor = node.walk();
        let children: Vec<_> = node.named_children(&mut cursor).collect();
        for child in children {
            if Some(child) != alternative {
                self.walk(child);
            }
        }
        let Some(alt) = alternative else { return };
        let else_end = token(node, "else")
            .expect("an if statement with an alternative has an else keyword")
            .end_byte();
        if alt.kind() == "if_statement" {
            self.cut.inserts.push(Insert::Text {
                offset: else_end,
                text: "{",
            });
            self.cut.inserts.push(Insert::Text {
                offset: alt.end_byte(),
                text: "}",
            });
            let list = [Item::Stmt(alt)];
            self.add_counters(
                else_end,
                else_end + 1,
                else_end,
                alt.end_byte() + 1,
                &list,
                true,
            );
            self.walk(alt);
        } else {
            let list = statements(alt);
            let rbrace = alt.end_byte() - 1;
            self.add_counters(
                else_end,
                else_end + 1,
                alt.start_byte() + 1,
                rbrace + 1,
                &list,
                true,
            );
            self.walk_children(alt);
        }
    }

    /// Switch, type switch and select: the header is walked first, then every clause gets its
    /// counters (an empty body gets none), then the clauses are walked.
    fn switch_like<'t>(&mut self, node: Node<'t>) {
        let mut cursor = node.walk();
        let children: Vec<_> = node.named_children(&mut cursor).collect();
        let first_clause = children.iter().position(|c| is_clause(c.kind()));
        for (i, child) in children.iter().enumerate() {
            if Some(i) == first_clause {
                for clause in children[i..].iter().filter(|c| is_clause(c.kind())) {
                    let colon = token(*clause, ":")
                        .expect("a case clause has a colon")
                        .end_byte();
                    let list = statements(*clause);
                    let end = list.last().map_or(colon, |last| item_end(*last));
                    self.add_counters(colon, colon, colon, end, &list, false);
                }
            }
            self.walk(*child);
        }
    }

    /// cover's `addCounters`: splits a statement list into basic blocks and records a counter
    /// for each. `insert_at` is where the first counter is written (after `{` or `:`); later
    /// ones go before the statement that starts their block.
    fn add_counters<'t>(
        &mut self,
        mut pos: usize,
        insert_pos: usize,
        mut insert_at: usize,
        block_end: usize,
        list: &[Item<'t>],
        mut extend_to_closing_brace: bool,
    ) {
        if list.is_empty() {
            match self.rules {
                Rules::Go120 => self.counter(insert_pos, block_end, 0, insert_at),
                Rules::Go127 => {
                    let r = ranges::code_ranges(self.src, insert_pos, block_end)[0];
                    self.counter(r.start, r.end, 0, insert_at);
                }
            }
            return;
        }
        let mut list: Vec<Item<'t>> = list.to_vec();
        loop {
            let mut last = 0;
            let mut end = block_end;
            while last < list.len() {
                let stmt = list[last];
                end = self.statement_boundary(stmt);
                if self.ends_basic_source_block(stmt) {
                    if let Item::Stmt(label) = stmt
                        && label.kind() == "labeled_statement"
                    {
                        let inner = labeled_inner(label, block_end);
                        if !is_control(inner) {
                            // A goto may land between the label and its statement: the label
                            // closes this block and its statement starts the next.
                            end = label.start_byte();
                            list[last] = Item::LabelOnly(label);
                            list.insert(last + 1, inner);
                        }
                    }
                    last += 1;
                    extend_to_closing_brace = false;
                    break;
                }
                last += 1;
            }
            if extend_to_closing_brace {
                end = block_end;
            }
            if pos != end {
                self.basic_block(pos, end, &list[..last], insert_at);
            }
            list.drain(..last);
            let Some(first) = list.first() else { break };
            pos = first.pos();
            insert_at = pos;
        }
    }

    /// The counters of one basic block, `pos..end`, holding the statements `list`: one
    /// block up to Go 1.26; from Go 1.27 one per range of code, each after the first written
    /// right where its code starts.
    fn basic_block(&mut self, pos: usize, end: usize, list: &[Item], insert_at: usize) {
        match self.rules {
            Rules::Go120 => self.counter(pos, end, list.len() as u32, insert_at),
            Rules::Go127 => {
                let stmts: Vec<(usize, usize)> =
                    list.iter().map(|i| (i.pos(), item_end(*i))).collect();
                let ranges = ranges::code_ranges(self.src, pos, end);
                for (i, c) in ranges::merge_within_statements(&ranges, &stmts)
                    .into_iter()
                    .enumerate()
                {
                    let at = if i == 0 { insert_at } else { c.range.start };
                    self.counter(c.range.start, c.range.end, c.num_stmt, at);
                }
            }
        }
    }

    fn counter(&mut self, start: usize, end: usize, num_stmt: u32, insert_at: usize) {
        let index = self.cut.blocks.len();
        self.cut.blocks.push(RawBlock {
            start,
            end,
            num_stmt,
            func: self.func.unwrap_or(usize::MAX),
        });
        self.cut.inserts.push(Insert::Counter {
            offset: insert_at,
            index,
        });
    }

    /// cover's `statementBoundary`: where the basic block that `stmt` ends stops.
    fn statement_boundary<'t>(&self, item: Item<'t>) -> usize {
        let stmt = match item {
            Item::Stmt(n) => n,
            Item::LabelOnly(n) => return n.end_byte(),
            Item::Implicit(at) => return at,
        };
        let lit = |n: Option<Node<'t>>| n.and_then(first_func_lit_body);
        match kind(self.src, stmt) {
            Kind::Block => stmt.start_byte(),
            Kind::If => lit(stmt.child_by_field_name("initializer"))
                .or_else(|| lit(stmt.child_by_field_name("condition")))
                .unwrap_or_else(|| body_start(stmt)),
            Kind::For => {
                let header = for_header(stmt);
                let clause = header.filter(|h| h.kind() == "for_clause");
                let found = match clause {
                    Some(c) => lit(c.child_by_field_name("initializer"))
                        .or_else(|| lit(c.child_by_field_name("condition")))
                        .or_else(|| lit(c.child_by_field_name("update"))),
                    None => lit(header),
                };
                found.unwrap_or_else(|| body_start(stmt))
            }
            Kind::Range => {
                let range = for_header(stmt).expect("a range loop has a range clause");
                lit(range.child_by_field_name("right")).unwrap_or_else(|| body_start(stmt))
            }
            Kind::Switch => lit(stmt.child_by_field_name("initializer"))
                .or_else(|| lit(stmt.child_by_field_name("value")))
                .unwrap_or_else(|| lbrace(stmt)),
            Kind::TypeSwitch => {
                lit(stmt.child_by_field_name("initializer")).unwrap_or_else(|| lbrace(stmt))
            }
            Kind::Select => lbrace(stmt),
            Kind::Labeled => match labeled_inner(stmt, stmt.end_byte()) {
                Item::Implicit(_) => stmt.end_byte(),
                inner => self.statement_boundary(inner),
            },
            Kind::Branch | Kind::Panic | Kind::Other => {
                first_func_lit_body(stmt).unwrap_or(stmt.end_byte())
            }
        }
    }

    /// cover's `endsBasicSourceBlock`.
    fn ends_basic_source_block<'t>(&self, item: Item<'t>) -> bool {
        let stmt = match item {
            Item::Stmt(n) => n,
            Item::LabelOnly(_) => return true,
            Item::Implicit(_) => return false,
        };
        match kind(self.src, stmt) {
            Kind::Other => first_func_lit_body(stmt).is_some(),
            _ => true,
        }
    }
}

fn is_clause(kind: &str) -> bool {
    matches!(
        kind,
        "expression_case" | "type_case" | "communication_case" | "default_case"
    )
}

fn kind(src: &[u8], stmt: Node) -> Kind {
    match stmt.kind() {
        "block" => Kind::Block,
        "if_statement" => Kind::If,
        "for_statement" => match for_header(stmt) {
            Some(h) if h.kind() == "range_clause" => Kind::Range,
            _ => Kind::For,
        },
        "expression_switch_statement" => Kind::Switch,
        "type_switch_statement" => Kind::TypeSwitch,
        "select_statement" => Kind::Select,
        "labeled_statement" => Kind::Labeled,
        "break_statement" | "continue_statement" | "goto_statement" | "fallthrough_statement" => {
            Kind::Branch
        }
        "expression_statement" if is_panic_call(src, stmt) => Kind::Panic,
        _ => Kind::Other,
    }
}

/// `panic(x)` with the bare identifier `panic` and exactly one argument (cover cannot type
/// check, so a local function named panic counts too).
fn is_panic_call(src: &[u8], stmt: Node) -> bool {
    let Some(call) = named_children(stmt).into_iter().next() else {
        return false;
    };
    if call.kind() != "call_expression" {
        return false;
    }
    let Some(fun) = call.child_by_field_name("function") else {
        return false;
    };
    if fun.kind() != "identifier" || text(src, fun) != b"panic" {
        return false;
    }
    if call.child_by_field_name("type_arguments").is_some() {
        return false;
    }
    call.child_by_field_name("arguments")
        .is_some_and(|args| named_children(args).len() == 1)
}

/// A labeled statement's statement, or the implicit empty statement of `L:` before `}`.
fn labeled_inner<'t>(label: Node<'t>, block_end: usize) -> Item<'t> {
    let stmts: Vec<Node> = named_children(label)
        .into_iter()
        .filter(|n| n.kind() != "label_name")
        .collect();
    match stmts.first() {
        Some(inner) => Item::Stmt(*inner),
        None => Item::Implicit(closing_brace_after(label).unwrap_or(block_end - 1)),
    }
}

/// The `}` that closes the block holding `node`.
fn closing_brace_after(node: Node) -> Option<usize> {
    let mut parent = node.parent()?;
    while parent.kind() == "statement_list" {
        parent = parent.parent()?;
    }
    let mut cursor = parent.walk();
    let brace = parent
        .children(&mut cursor)
        .filter(|c| !c.is_named() && c.kind() == "}")
        .last()?;
    Some(brace.start_byte())
}

fn is_control(item: Item) -> bool {
    match item {
        Item::Stmt(n) => matches!(
            n.kind(),
            "for_statement"
                | "expression_switch_statement"
                | "type_switch_statement"
                | "select_statement"
        ),
        _ => false,
    }
}

fn for_header(stmt: Node) -> Option<Node> {
    let body = stmt.child_by_field_name("body");
    named_children(stmt).into_iter().find(|c| Some(*c) != body)
}

fn body_start(stmt: Node) -> usize {
    let field = if stmt.kind() == "if_statement" {
        "consequence"
    } else {
        "body"
    };
    stmt.child_by_field_name(field)
        .expect("control statements have a body")
        .start_byte()
}

fn lbrace(stmt: Node) -> usize {
    token(stmt, "{")
        .expect("switch and select have an opening brace")
        .start_byte()
}

/// The `{` of the body of the first func literal in `node`, in source order.
fn first_func_lit_body(node: Node) -> Option<usize> {
    if node.kind() == "func_literal" {
        return node.child_by_field_name("body").map(|b| b.start_byte());
    }
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        if let Some(found) = first_func_lit_body(child) {
            return Some(found);
        }
    }
    None
}

/// The statements of a block or case clause, as `go/ast` lists them.
fn statements(node: Node) -> Vec<Item> {
    let Some(list) = named_children(node)
        .into_iter()
        .find(|c| c.kind() == "statement_list")
    else {
        return Vec::new();
    };
    named_children(list).into_iter().map(Item::Stmt).collect()
}

/// `End()` of a statement-list item.
fn item_end(item: Item) -> usize {
    match item {
        Item::Stmt(n) | Item::LabelOnly(n) => n.end_byte(),
        Item::Implicit(at) => at,
    }
}

/// The `T.` or `*T.` that cover puts before a method's name; nothing for receivers that are not
/// a plain (pointer to a) type name, such as generic ones.
fn receiver_prefix(src: &[u8], recv: Node) -> String {
    let params: Vec<Node> = named_children(recv)
        .into_iter()
        .filter(|n| n.kind() == "parameter_declaration")
        .collect();
    let [param] = params.as_slice() else {
        return String::new();
    };
    let Some(mut ty) = param.child_by_field_name("type") else {
        return String::new();
    };
    let mut star = "";
    if ty.kind() == "pointer_type" {
        star = "*";
        match named_children(ty).into_iter().next() {
            Some(inner) => ty = inner,
            None => return String::new(),
        }
    }
    if ty.kind() != "type_identifier" {
        return String::new();
    }
    format!("{star}{}.", String::from_utf8_lossy(text(src, ty)))
}
