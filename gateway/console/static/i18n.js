// The console's words in Simplified Chinese (the default) and English. Messages from
// the gateway itself (problem details) come already translated: api.js sends
// Accept-Language.
const LANG_KEY = "gw-lang";

const WORDS = {
  "zh-CN": {
    brand: "数据共享网关", skip: "跳到主要内容", nav: "主导航", switch: "English",
    logout: "退出", login: "登录", username: "用户名", password: "密码",
    totp: "动态验证码（如已绑定）", login_title: "登录控制台",
    expired: "会话已过期或已退出，请重新登录。", forbidden: "您的角色无权访问此页面。",
    loading: "加载中…", error: "出错了", none: "无",
    p_catalog: "数据目录", p_sql: "SQL 查询", p_apply: "申请数据", p_mine: "我的申请与授权",
    p_inbox: "待办审批", p_policy: "策略版本", p_all: "全部申请", p_stats: "共享统计",
    p_audit: "审计日志", p_checkpoints: "检查点", p_verify: "校验回执", p_accounts: "账号管理",
    p_me: "我的账号",
    system: "通过系统", purpose: "用途", search: "搜索", dataset: "数据集", table: "数据表",
    field: "字段", type: "类型", sensitivity: "敏感级别", you_see: "您将看到",
    no_access: "无权限", allowed: "可见", masked: "脱敏", row_filter: "行过滤", expires: "授权到期",
    apply_for: "申请此数据集", sql: "SQL 语句", run: "执行查询", max_rows: "最多行数",
    rows: "行数", truncated: "结果已按策略截断", masks_applied: "已脱敏列",
    receipt: "审计回执", download_receipt: "下载回执（含结果正文）", explain: "网关如何处理此查询",
    rewritten: "改写后的 SQL", decisions: "逐字段决定", filters: "行过滤条件",
    audit_id: "审计编号", columns: "字段（每行 表名: 字段1,字段2）", legal_basis: "法律依据",
    scenario: "使用场景", justification: "申请理由", contact: "联系人", submit: "提交申请",
    submitted: "已提交", applications: "申请", grants: "授权", quotas: "配额与用量",
    state: "状态", deadline: "答复期限", days_left: "剩余工作日", overdue: "已逾期",
    escalated: "已上报数据局", reason: "理由", approve: "批准", narrow: "缩小范围后批准",
    return_: "退回补正", refuse: "拒绝", review: "开始审查", comment: "备注",
    arbitrate_approve: "仲裁批准", arbitrate_refuse: "仲裁拒绝",
    drop_columns: "去掉的字段（表名.字段，逗号分隔）", done: "已完成", applicant: "申请人",
    versions: "策略版本", diff: "差异", validate: "校验", propose: "提交新版本", files: "文件",
    file: "文件名", content: "内容", approve_v: "审核通过", activate: "激活", reject: "驳回",
    valid: "校验通过", invalid: "校验未通过", explain_as: "以消费方系统身份解释", replay: "回放",
    version: "版本", author: "作者",
    department: "部门", reply_days: "答复中位数（工作日）", approval_rate: "批准率",
    queries_served: "已服务查询", rows_delivered: "交付行数", from: "起", until: "止",
    outcome: "结果", time: "时间", officer: "经办人", filter: "筛选", record: "审计记录",
    proof: "包含证明", verify_proof: "校验包含证明", export: "导出证据包",
    verify_title: "在浏览器中校验您保存的回执", choose_file: "选择回执文件（查询结果或回执）",
    verify_body: "结果正文的 SHA-256 与记录一致", verify_leaf: "叶哈希与记录一致",
    verify_inclusion: "包含证明通向检查点的根", verify_sig: "检查点签名（Ed25519）有效",
    sig_unsupported: "此浏览器不支持 Ed25519，签名未校验（其余各项已校验）",
    verified: "回执校验通过", not_verified: "回执校验失败", no_body: "文件只含回执，无结果正文",
    accounts: "账号", display_name: "姓名", roles: "角色", systems: "所属系统", create: "创建",
    status_: "状态", enable_totp: "绑定动态验证码", totp_secret: "密钥（在验证器应用中添加）",
    totp_code: "验证器显示的 6 位数字", confirm: "确认", totp_on: "已启用动态验证码",
    more: "更多", next_page: "下一页", count: "条数", checkpoint_size: "树大小", root: "根哈希",
  },
  en: {
    brand: "Data-sharing gateway", skip: "Skip to main content", nav: "Main navigation",
    switch: "中文", logout: "Log out", login: "Sign in", username: "Username",
    password: "Password", totp: "Authenticator code (if enrolled)", login_title: "Sign in to the console",
    expired: "Your session has expired or ended; please sign in again.",
    forbidden: "Your role may not open this page.", loading: "Loading…", error: "Error", none: "none",
    p_catalog: "Catalog", p_sql: "SQL query", p_apply: "Apply for data", p_mine: "My applications & grants",
    p_inbox: "Inbox", p_policy: "Policy versions", p_all: "All applications", p_stats: "Statistics",
    p_audit: "Audit log", p_checkpoints: "Checkpoints", p_verify: "Verify a receipt",
    p_accounts: "Accounts", p_me: "My account",
    system: "Through system", purpose: "Purpose", search: "Search", dataset: "Dataset",
    table: "Table", field: "Field", type: "Type", sensitivity: "Sensitivity", you_see: "What you would see",
    no_access: "no access", allowed: "visible", masked: "masked", row_filter: "row filter",
    expires: "grant expires", apply_for: "Apply for this dataset", sql: "SQL", run: "Run query",
    max_rows: "Max rows", rows: "Rows", truncated: "The result was truncated by the policy",
    masks_applied: "Masked columns", receipt: "Audit receipt",
    download_receipt: "Download the receipt (with the result body)",
    explain: "What the gateway did with this query", rewritten: "Rewritten SQL",
    decisions: "Per-field decisions", filters: "Row filters", audit_id: "Audit id",
    columns: "Fields (one line per table: table: col1,col2)", legal_basis: "Legal basis",
    scenario: "Scenario", justification: "Justification", contact: "Contact", submit: "Submit",
    submitted: "Submitted", applications: "Applications", grants: "Grants", quotas: "Quotas and usage",
    state: "State", deadline: "Reply due", days_left: "Working days left", overdue: "overdue",
    escalated: "escalated to the coordinator", reason: "Reason", approve: "Approve",
    narrow: "Approve narrower", return_: "Return for changes", refuse: "Refuse", review: "Start review",
    comment: "Comment", arbitrate_approve: "Arbitrate: approve", arbitrate_refuse: "Arbitrate: refuse",
    drop_columns: "Fields to drop (table.field, comma separated)", done: "Done", applicant: "Applicant",
    versions: "Policy versions", diff: "Diff", validate: "Validate", propose: "Propose a version",
    files: "Files", file: "File name", content: "Content", approve_v: "Approve", activate: "Activate",
    reject: "Reject", valid: "Valid", invalid: "Not valid", explain_as: "Explain as a consumer system",
    replay: "Replay", version: "Version", author: "Author",
    department: "Department", reply_days: "Median reply (working days)", approval_rate: "Approval rate",
    queries_served: "Queries served", rows_delivered: "Rows delivered", from: "From", until: "Until",
    outcome: "Outcome", time: "Time", officer: "Officer", filter: "Filter", record: "Audit record",
    proof: "Inclusion proof", verify_proof: "Verify the inclusion proof", export: "Export evidence bundle",
    verify_title: "Verify a receipt you kept, in the browser",
    choose_file: "Choose the receipt file (a query result or a receipt)",
    verify_body: "SHA-256 of the result body matches the record", verify_leaf: "Leaf hash matches the record",
    verify_inclusion: "Inclusion proof leads to the checkpoint's root",
    verify_sig: "Checkpoint signature (Ed25519) is valid",
    sig_unsupported: "This browser has no Ed25519: the signature was not checked (everything else was)",
    verified: "Receipt verified", not_verified: "Receipt NOT verified", no_body: "The file holds only a receipt, no result body",
    accounts: "Accounts", display_name: "Name", roles: "Roles", systems: "Systems", create: "Create",
    status_: "Status", enable_totp: "Enrol an authenticator", totp_secret: "Secret (add it to your authenticator app)",
    totp_code: "The 6 digits your authenticator shows", confirm: "Confirm", totp_on: "Authenticator enrolled",
    more: "More", next_page: "Next page", count: "Count", checkpoint_size: "Tree size", root: "Root hash",
  },
};

export function lang() {
  const saved = localStorage.getItem(LANG_KEY);
  return saved === "en" ? "en" : "zh-CN";
}

export function setLang(value) {
  localStorage.setItem(LANG_KEY, value);
  document.documentElement.lang = value;
}

export function t(key) {
  return WORDS[lang()][key] ?? WORDS["zh-CN"][key] ?? key;
}

/** A {zh, en} object from the catalog, in the current language. */
export function pick(text) {
  if (!text || typeof text !== "object") return text ?? "";
  return lang() === "en" ? text.en || text.zh || "" : text.zh || text.en || "";
}

export const KEYS = Object.keys(WORDS["zh-CN"]);
export const EN_KEYS = Object.keys(WORDS.en);
