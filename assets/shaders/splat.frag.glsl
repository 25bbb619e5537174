#version 330
// One Gaussian's alpha at this pixel (3DGS's cutoffs), premultiplied: blended with
// (ONE, ONE_MINUS_SRC_ALPHA), back to front.
uniform bool u_points;
in vec2 v_offset;
flat in vec3 v_conic;
flat in vec4 v_color;
flat in float v_side;
out vec4 frag;

void main() {
    vec2 d = u_points ? (gl_PointCoord - 0.5) * v_side : v_offset;
    float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
    float alpha = min(0.99, v_color.a * exp(power));
    if (alpha < 1.0 / 255.0) discard;
    frag = vec4(v_color.rgb * alpha, alpha);
}
